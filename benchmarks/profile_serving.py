"""Where one /predict request's time goes in the running server: py-spy samples the API
process while wrk drives single-row requests, and every sample of the event-loop thread
is put in one bucket (the innermost frame that matches wins), so the buckets add up to
the whole wall time of the loop.

    python benchmarks/profile_serving.py [--duration 15] [--connections 1] [--rate 2000]

Needs a champion in the registry, Debian's `wrk` and `py-spy` (pip install py-spy; run as
root or with ptrace allowed). The API serves one worker on 127.0.0.1 with a throw-away
SQLite prediction log, as benchmarks/serving.py does, once its native trees serve (or
the booster is settled on).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from serving import ROOT, api_command, free_port, start_server, stop_server, wait_ready, wait_trees, wrk  # noqa: E402

from housing.pipelines.data_processing.features import FEATURES  # noqa: E402

# (bucket, pattern on "function (file:line)"): the first bucket whose pattern matches a
# frame, searching from the innermost frame outwards, takes the sample
BUCKETS = [
    ("model: trees (tree tables)", r"\bpredict_row \(.*serving/tree_tables\.py"),
    ("model: trees (compiled)", r"\bpredict_row \(.*serving/compiled\.py"),
    ("model: trees (LightGBM booster)", r"__call__ \(.*serving/model\.py|basic\.py"),
    ("model: features (transform_row)", r"transform_row \(.*features\.py"),
    ("prediction log (handing over / committing)", r"prediction_log\.py|sqlalchemy|sqlite3"),
    ("body: validation (pydantic)", r"pydantic|fastapi/_compat|request_body_to_args"),
    ("answer: serialisation", r"serialize_response|render \(|jsonable_encoder|to_json"),
    ("metrics (prometheus)", r"metrics\.py|prometheus_client"),
    ("route: request id, log record", r"routes/predict\.py"),
    ("the /predict lane: body, answer (lane.py)", r"serving/lane\.py"),
    ("FastAPI's own middlewares", r"fastapi/_body_limit|fastapi/telemetry"),
    ("FastAPI / Starlette: routing, dependencies", r"fastapi/|starlette/"),
    ("uvicorn + httptools: HTTP, sockets", r"uvicorn/|httptools"),
]
IDLE = "idle: the loop waiting for the next request"
# the innermost frame when the event loop waits (uvloop waits in C, under Runner.run)
# (and where other threads wait for work: a condition, an event, a queue)
_WAITING = re.compile(
    r"^(Runner\.run|run_forever|run_until_complete|select|_run_once) \(|^\w+\.wait \(.*threading\.py|^(\w+\.)?get \(.*queue\.py"
)


def bucket(stack: list[str]) -> str:
    if not stack or _WAITING.match(stack[-1]):
        return IDLE
    for frame in reversed(stack):  # innermost first
        for name, pattern in BUCKETS:
            if re.search(pattern, frame):
                return name
    return "other (asyncio, interpreter)"


def profile(pid: int, seconds: int, rate: int, out: Path, stacks: collections.defaultdict) -> dict:
    """Samples per bucket, by thread; ``stacks`` collects the innermost frames per bucket."""
    subprocess.run(
        ["py-spy", "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate)]
        + ["--format", "raw", "--threads", "--idle", "--output", str(out)],
        check=True,
        capture_output=True,
        timeout=seconds + 60,
    )
    threads: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        thread = frames[0]
        name = bucket(frames[1:])
        threads[thread][name] += int(count)
        stacks[name][" <- ".join(reversed(frames[-4:]))] += int(count)
    return threads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds of load and sampling")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--env", default=None)
    parser.add_argument("--batch-rows", type=int, default=0, help="profile /predict/batch with N houses")
    parser.add_argument("--stacks", type=int, default=0, help="show the N commonest stacks of each bucket")
    args = parser.parse_args()
    for tool in ("wrk", "py-spy"):
        if not shutil.which(tool):
            print(f"{tool} not found (apt-get install wrk; pip install py-spy)", file=sys.stderr)
            return 2
    tracking = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{ROOT / 'mlflow.db'}"
    houses = pd.read_csv(ROOT / "data" / "01_raw" / "california_housing.csv")[list(FEATURES)]
    if args.batch_rows:
        path = "/predict/batch"
        body = json.dumps({"houses": houses.sample(args.batch_rows, random_state=0).to_dict("records")})
    else:
        path, body = "/predict", json.dumps(houses.iloc[0].to_dict())
    with tempfile.TemporaryDirectory(prefix="housing-profile-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": tracking,
            "KEDRO_DISABLE_TELEMETRY": "true",
            "HOUSING_PREDICTION_LOG_URI": f"sqlite:///{workdir / 'log.db'}",
        }
        process = start_server(api_command(port, args.env), env)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base + "/ready", process)
            print(f"trees: {wait_trees(base)}")
            wrk(base + path, body, args.connections, 3, workdir)  # warm-up
            load = subprocess.Popen(
                ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration + 2}s", "--latency"]
                + ["-s", str(workdir / "post.lua"), base + path],
                stdout=subprocess.PIPE,
                text=True,
            )
            stacks: collections.defaultdict = collections.defaultdict(collections.Counter)
            threads = profile(process.pid, args.duration, args.rate, workdir / "samples.txt", stacks)
            out, _ = load.communicate(timeout=args.duration + 60)
        finally:
            stop_server(process)
    per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    # the event loop: uvicorn runs it on the main thread (with --idle every thread is
    # sampled as often, so "the busiest" would pick any)
    loop = next(counter for thread, counter in threads.items() if thread.endswith("MainThread"))
    total = loop.total()
    wall_us = 1e6 / per_second
    print(
        f"\n{path} at c={args.connections}: {per_second:.0f} req/s, so {wall_us:.0f} µs of the event "
        f"loop's wall time per request; {total} samples of the loop thread\n"
    )
    print("| where | share | µs per request |")
    print("| --- | --- | --- |")
    for name, count in loop.most_common():
        print(f"| {name} | {count / total:.1%} | {count / total * wall_us:.0f} |")
    for name, _ in loop.most_common() if args.stacks else ():
        print(f"\n{name}:")
        for stack, count in stacks[name].most_common(args.stacks):
            print(f"  {count:6d}  {re.sub(r'/[^ ]*/site-packages/', '', stack)}")
    others = [(thread, counter) for thread, counter in threads.items() if counter is not loop]
    for thread, counter in others:
        busy = counter.total() - counter[IDLE]
        if busy > 0.01 * total:
            top = ", ".join(f"{n} {c / counter.total():.0%}" for n, c in counter.most_common(3))
            print(f"\nanother thread ({thread}): {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
