"""Traffic simulation: seeded scenarios built on the held-out rows (scenarios.py) and
their replay against a running API (replay.py), for ``housing simulate``.

The names and bounds below are all ``housing --help`` needs, so they import nothing."""

SCENARIO_NAMES: tuple[str, ...] = ("stable", "inflation", "geographic", "regional", "income_shift")
MAX_REQUESTS = 100_000  # one replay is bounded in count ...
MAX_RATE = 5_000.0  # ... and in requests per second
