"""Throughput of ``webapp.messaging.segments.count`` against Twilio's calculator under node.

Run by hand from the repository root (it installs nothing)::

    npm install --prefix /tmp/segcalc sms-segments-calculator@1.3.0
    .venv/bin/python bench/segments_bench.py --calculator-dir /tmp/segcalc

The counter runs on every keystroke of the composer and for every message dispatched, so it must stay
cheap; the calculator is the reference implementation, and a speed that is the same order as its own
(JIT-compiled) one says we are not doing anything silly per character.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))

from webapp.messaging.segments import count  # noqa: E402

JS_BENCH = Path(__file__).with_name("segments_bench.mjs")
DEFAULT_CALCULATOR_DIR = "/tmp/segcalc"

_PHRASES = (
    "hej tack för din ansökan vi vill boka en intervju på tisdag kl 14:00 svara JA för att bekräfta "
    "hallo vielen Dank für Ihre Bewerbung wir möchten Sie gerne zum Gespräch einladen Grüße "
    "hi thanks for applying to the warehouse role at Acme can you do Tuesday at 2pm reply YES to confirm "
    "bonjour merci pour votre candidature entretien mardi à 14h répondez OUI Señor Ørsted Åsa Straße"
)
_WORDS = _PHRASES.split()
_EXTENSION = "€{}[]~\\|^"
_UCS2 = ("ç", "’", "ê", "á", "😀", "👍", "🎉", "✅", "📅", "👍🏽", "中", "–", "…")


def _words(rng: random.Random, length: int) -> str:
    out: list[str] = []
    size = 0
    while size < length:
        word = rng.choice(_WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)[:length]


def make_corpus(n: int, seed: int) -> list[str]:
    """A mixed corpus of recruiting-like texts: ~70% GSM-7, ~15% with extension chars, ~15% UCS-2."""
    rng = random.Random(seed)
    corpus: list[str] = []
    for _ in range(n):
        text = _words(rng, rng.randint(20, 400))
        kind = rng.random()
        if kind >= 0.85:  # UCS-2: emoji and accents outside GSM
            chars = list(text)
            for _ in range(rng.randint(1, 4)):
                chars.insert(rng.randrange(len(chars) + 1), rng.choice(_UCS2))
            text = "".join(chars)
        elif kind >= 0.70:  # GSM-7 with escape pairs
            chars = list(text)
            for _ in range(rng.randint(1, 6)):
                chars.insert(rng.randrange(len(chars) + 1), rng.choice(_EXTENSION))
            text = "".join(chars)
        corpus.append(text)
    return corpus


def _python_rate(corpus: list[str], seconds: float) -> dict[str, Any]:
    for text in corpus:  # warm-up, same as the node side
        count(text)
    messages = 0
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline:
        for text in corpus:
            count(text)
        messages += len(corpus)
        now = time.perf_counter()
    elapsed = now - start
    return {"messages_per_second": messages / elapsed, "messages": messages, "seconds": elapsed}


def _js_rate(
    corpus: list[str], seconds: float, calculator_dir: str | Path
) -> tuple[dict[str, Any] | None, str]:
    node = shutil.which("node")
    if node is None:
        return None, "node is not on PATH"
    package = Path(calculator_dir) / "node_modules" / "sms-segments-calculator" / "package.json"
    if not package.is_file():
        return None, (
            f"no calculator in {calculator_dir} "
            "(npm install --prefix /tmp/segcalc sms-segments-calculator@1.3.0)"
        )
    done = subprocess.run(
        [node, str(JS_BENCH), str(calculator_dir), str(seconds)],
        input=json.dumps(corpus, ensure_ascii=False),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=seconds * 10 + 60,
        check=False,
    )
    if done.returncode != 0:
        return None, f"node failed ({done.returncode}): {done.stderr.strip()[-500:]}"
    return json.loads(done.stdout), ""


def run(
    corpus: list[str], seconds: float = 3.0, *, calculator_dir: str | Path = DEFAULT_CALCULATOR_DIR
) -> dict[str, Any]:
    """Messages per second through our ``count`` and through Twilio's calculator, and their ratio.

    Without node or the calculator the JS side is None and ``js_missing`` says why.
    """
    python = _python_rate(corpus, seconds)
    js, why = _js_rate(corpus, seconds, calculator_dir)
    result: dict[str, Any] = {
        "corpus_size": len(corpus),
        "python": {**python, "python": sys.version.split()[0]},
        "js": js,
        "python_over_js": None,
    }
    if js is None:
        result["js_missing"] = why
    else:
        result["python_over_js"] = python["messages_per_second"] / js["messages_per_second"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calculator-dir", default=DEFAULT_CALCULATOR_DIR)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--size", type=int, default=2000, help="texts in the corpus")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    corpus = make_corpus(args.size, args.seed)
    print(json.dumps(run(corpus, args.seconds, calculator_dir=args.calculator_dir), indent=2))


if __name__ == "__main__":
    main()
