"""Time: the periodic work of every process, run once across them all.

- tasks.py: what runs, and how often (each interval is a setting; 0 switches a task off);
- runs.py: the guard, a row per task (`scheduled_run`) claimed with one conditional UPDATE, so that of
  several clocks (or web processes) passing at once exactly one runs a due task — on SQLite and
  PostgreSQL alike, with no lock left behind by a clock that dies;
- clock.py: one pass (`run_due`), the loop of `flask --app wsgi clock` (`run_forever`), and the same
  loop in a thread of a served app (`start_in_process`, CLOCK_IN_PROCESS).

Plain functions over the database session: no request, no blueprint.
"""
