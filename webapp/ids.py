"""Ids typed by people or tools: in URLs, forms, query strings and on the command line.

Our ids are INTEGER columns (1 … 2³¹−1 on PostgreSQL). Anything else is "no such object" — a 404 or
a form error — and never reaches the database, where 99999999999999999999 fails as out of range.
Only ASCII digits count: `"²".isdigit()` and `"٣".isdigit()` are true, and `int("٣")` is 3.
"""

from __future__ import annotations

import re

from werkzeug.routing import BaseConverter, ValidationError

MAX_ID = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")


def parse(value: object) -> int | None:
    """The id that `value` spells (surrounding spaces allowed), or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        return None
    return number if 1 <= number <= MAX_ID else None


def _at_most(limit: int) -> str:
    """A regular expression for 1 … limit in ASCII digits, without leading zeros."""
    digits = str(limit)
    options = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    for i, digit in enumerate(digits):
        low, high = (1 if i == 0 else 0), int(digit) - 1
        if high >= low:
            options.append(f"{digits[:i]}[{low}-{high}][0-9]{{{len(digits) - i - 1}}}")
    options.append(digits)
    return "(?:" + "|".join(options) + ")"


class IdConverter(BaseConverter):
    """`<id:name>` in a route: an id, written as `str(id)`, or the route does not match (a 404).

    The range is in the regular expression, not only in to_python: werkzeug answers a failed to_python
    with 405 when the same path has a rule for another method.
    """

    regex = _at_most(MAX_ID)
    part_isolating = True

    def to_python(self, value: str) -> int:
        number = parse(value)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value: object) -> str:
        number = parse(value)
        if number is None:
            raise ValueError(f"{value!r} is not an id")
        return str(number)
