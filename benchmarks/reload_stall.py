"""Does a hot reload stall serving? p50/p99 of /predict under load, without and with
reloads of the champion, same server, same run.

    python benchmarks/reload_stall.py [--duration 20] [--reloads 5] [--concurrency 8]
                                      [--project-path .] [--env ENV]

Needs a champion in the project's registry (`kedro run --pipelines=training`) and
Debian's `wrk` (`apt-get install wrk`). One uvicorn worker (`python -m housing.serving`)
on 127.0.0.1, logging to a temporary SQLite file (your prediction log stays clean). wrk
drives single-row /predict at --concurrency for --duration seconds twice: alone, then
while POST /admin/reload swaps the same version in --reloads times, evenly spaced. The
goal (issue 14): p99 with reloads within 5 ms of p99 without. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from serving import ROOT, api_command, free_port, start_server, stop_server, wait_ready  # noqa: E402

from housing.serving.schemas import House  # noqa: E402

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
HOUSE = House.model_config["json_schema_extra"]["examples"][0]  # the documented example


@contextmanager
def api(project: Path, env_name: str | None, extra_env: dict[str, str]):
    """``housing serve`` on a free port, ready; stopped on exit."""
    port = free_port()
    process = start_server(api_command(port, env_name, project), {**os.environ, **extra_env})
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/ready", process)
        yield url, process
    finally:
        stop_server(process)


def wrk(url: str, connections: int, duration: int, workdir: Path) -> dict:
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(HOUSE))}\n"
    )
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration + 60).stdout

    def ms(pattern: str) -> float:
        value, unit = re.search(pattern, out, re.M).groups()
        return float(value) * UNITS[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50": ms(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$"),
        "p99": ms(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$"),
        "max": ms(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)"),
        "errors": int(errors.group(1)) if errors else 0,
    }


def reload_during(url: str, token: str, duration: int, reloads: int, took: list[float]) -> threading.Thread:
    """POST /admin/reload ``reloads`` times, evenly spaced over ``duration`` seconds."""

    def run() -> None:
        gap = duration / (reloads + 1)
        for _ in range(reloads):
            time.sleep(gap)
            started = time.perf_counter()
            response = httpx.post(
                f"{url}/admin/reload", headers={"Authorization": f"Bearer {token}"}, timeout=120
            )
            response.raise_for_status()
            took.append(time.perf_counter() - started)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--reloads", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--project-path", type=Path, default=ROOT)
    parser.add_argument("--env", default=None, help="Kedro configuration environment")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        extra = {
            "HOUSING_ADMIN_TOKEN": token,
            "HOUSING_PREDICTION_LOG_URI": f"sqlite:///{workdir / 'predictions.db'}",
            "KEDRO_DISABLE_TELEMETRY": "true",
        }
        with api(args.project_path.resolve(), args.env, extra) as (url, _process):
            predict = f"{url}/predict"
            wrk(predict, args.concurrency, 3, workdir)  # warm-up, not reported
            quiet = wrk(predict, args.concurrency, args.duration, workdir)
            took: list[float] = []
            reloader = reload_during(url, token, args.duration, args.reloads, took)
            busy = wrk(predict, args.concurrency, args.duration, workdir)
            reloader.join(timeout=args.duration + 240)
    print(f"\n/predict, c={args.concurrency}, {args.duration} s each, one worker\n")
    print("| load | requests | non-2xx | p50 ms | p99 ms | max ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, r in (("no reloads", quiet), (f"{len(took)} reloads", busy)):
        print(
            f"| {label} | {r['requests']} | {r['errors']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['max']:.1f} |"
        )
    print(f"\nreloads took {', '.join(f'{t:.2f}' for t in took)} s")
    print(
        f"p99 with reloads - without: {busy['p99'] - quiet['p99']:+.2f} ms (goal <= 5 ms); "
        f"ratio {busy['p99'] / quiet['p99']:.2f}x"
    )
    return 0 if len(took) == args.reloads and not busy["errors"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
