"""Start-up of the prediction API: time to /health (alive), time to /ready (model in),
and resident memory once ready and after N hot reloads of the same version.

    python benchmarks/startup.py [--reloads 15] [--runs 3] [--project-path .] [--env ENV]

Needs a champion in the project's registry (`kedro run --pipelines=training`). Starts
`python -m housing.serving` (one uvicorn worker on 127.0.0.1, prediction log in a
temporary SQLite file) --runs times, polls every 10 ms, and reads the server's resident
set size from /proc/<pid>/statm (Linux); after a reload, once the new model's trees are
settled (their check against the booster runs in the background and holds its rows
meanwhile: a reading in the middle of it is a passing peak). Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from serving import ROOT, api_command, free_port, start_server, stop_server, wait_trees  # noqa: E402


def resident_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def first_200(url: str, process: subprocess.Popen, started: float, timeout: float = 300) -> float:
    """Seconds from ``started`` until ``url`` answers 200."""
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.01)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s")


def one_run(project: Path, env_name: str | None, reloads: int, workdir: Path) -> dict:
    port, token = free_port(), secrets.token_urlsafe(24)
    command = api_command(port, env_name, project)
    extra = {
        "HOUSING_ADMIN_TOKEN": token,
        "HOUSING_PREDICTION_LOG_URI": f"sqlite:///{workdir / f'predictions-{port}.db'}",
        "KEDRO_DISABLE_TELEMETRY": "true",
    }
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    process = start_server(command, {**os.environ, **extra})
    try:
        health = first_200(f"{url}/health", process, started)
        ready = first_200(f"{url}/ready", process, started)
        rss_ready = resident_mb(process.pid)
        rss_reloads = []
        for _ in range(reloads):
            # each model's trees are checked against its booster in the background after
            # the swap; the resident memory is read once that is done, not in the middle
            wait_trees(url)
            answer = httpx.post(
                f"{url}/admin/reload", headers={"Authorization": f"Bearer {token}"}, timeout=120
            )
            answer.raise_for_status()
            wait_trees(url)
            rss_reloads.append(resident_mb(process.pid))
    finally:
        stop_server(process)
    return {"health": health, "ready": ready, "rss_ready": rss_ready, "rss_reloads": rss_reloads}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=15)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--project-path", type=Path, default=ROOT)
    parser.add_argument("--env", default=None, help="Kedro configuration environment")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [
            one_run(args.project_path.resolve(), args.env, args.reloads, Path(tmp)) for _ in range(args.runs)
        ]
    print(f"\nAPI start-up, {args.runs} runs (median), one uvicorn worker\n")
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| process start to /health 200 | {statistics.median(r['health'] for r in runs):.2f} s |")
    print(f"| process start to /ready 200 | {statistics.median(r['ready'] for r in runs):.2f} s |")
    print(f"| RSS once ready | {statistics.median(r['rss_ready'] for r in runs):.0f} MB |")
    if args.reloads:
        first = statistics.median(r["rss_reloads"][0] for r in runs)
        last = statistics.median(r["rss_reloads"][-1] for r in runs)
        print(f"| RSS after the first reload | {first:.0f} MB |")
        print(f"| RSS after {args.reloads} reloads | {last:.0f} MB ({(last - first) / first:+.1%}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
