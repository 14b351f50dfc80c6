"""What one 1,000-row batch costs the prediction log as the log grows: request ids in time
order (``request_ids``, UUIDv7, what the API writes) against random ones (uuid4), through
the API's own ``PredictionLog.record`` on a throw-away SQLite file.

    python benchmarks/log_commit.py [--batches 300] [--rows 1000]

The id is the table's primary key: random keys land on random pages of its index, so
each commit rewrites a page per row once the index outgrows the cache; ordered keys
append. Prints the median commit time over each stretch of batches.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from housing.pipelines.data_processing.features import FEATURES  # noqa: E402
from housing.serving.log_table import now_iso, request_ids  # noqa: E402
from housing.serving.prediction_log import PredictionLog  # noqa: E402


def random_ids(n: int) -> list[str]:
    return [uuid.uuid4().hex for _ in range(n)]


def commits(ids, batches: int, rows: int, path: Path) -> list[float]:
    """Seconds per commit of ``rows`` rows, for ``batches`` batches in a row."""
    log = PredictionLog(f"sqlite:///{path}")
    features = (1.5,) * len(FEATURES)
    seconds = []
    try:
        for _ in range(batches):
            batch_id, *keys = ids(rows + 1)
            created = now_iso()
            # as the API writes them (LOGGED order)
            records = [(k, batch_id, created, "bench", 1, *features, 2.0) for k in keys]
            start = time.perf_counter()
            log.record(records)
            seconds.append(time.perf_counter() - start)
    finally:
        log.close()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    stretch = max(1, args.batches // 3)
    results = {}
    with tempfile.TemporaryDirectory(prefix="housing-log-commit-") as tmp:
        for name, ids in (("time-ordered (request_ids)", request_ids), ("random (uuid4)", random_ids)):
            results[name] = commits(ids, args.batches, args.rows, Path(tmp) / f"{name.split()[0]}.db")
    heads = [
        f"rows {i * stretch * args.rows:,}-{min((i + 1) * stretch, args.batches) * args.rows:,}"
        for i in range(3)
    ]
    print(f"\nmedian ms per commit of {args.rows:,} rows, by how many rows the log held\n")
    print("| ids | " + " | ".join(heads) + " |")
    print("| --- |" + " --- |" * len(heads))
    for name, seconds in results.items():
        parts = [seconds[i * stretch : (i + 1) * stretch] for i in range(3)]
        print(f"| {name} | " + " | ".join(f"{statistics.median(p) * 1e3:.1f}" for p in parts if p) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
