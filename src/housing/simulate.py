"""Replay production traffic against a running prediction API.

    python -m housing.simulate --scenario inflation --n 2000 --rate 200 --feedback

Rows come from a seeded scenario (``simulation.scenarios`` in parameters_monitoring.yml)
built on the held-out test rows, read through the Kedro catalog. Each row is one
POST /predict; with ``--feedback`` its ground truth follows through POST /feedback, as a
sale price would; feedback needs a feedback token (``--token`` or ``HOUSING_API_TOKEN``,
sent as ``Authorization: Bearer`` on every request). Bounded in count, rate and time;
loopback only unless --allow-remote.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pandas as pd
from tqdm import tqdm

from housing.pipelines.data_processing.features import FEATURES
from housing.pipelines.monitoring.scenarios import SCENARIOS, make_scenario

MAX_REQUESTS = 100_000
MAX_RATE = 5_000.0


def replay(
    client: httpx.Client,
    rows: pd.DataFrame,
    rate: float,
    feedback: bool = False,
    progress: bool = True,
    deadline_seconds: float = 3_600.0,
) -> dict[str, int]:
    """Send each row as one prediction (and its feedback), paced at ``rate`` per second."""
    counts = {"sent": 0, "predicted": 0, "rejected": 0, "feedback": 0}
    interval = 1.0 / rate
    start = time.monotonic()
    for i, row in enumerate(
        tqdm(rows.itertuples(index=False), total=len(rows), disable=not progress, unit="req")
    ):
        if time.monotonic() - start > deadline_seconds:
            break
        wait = start + i * interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        house = {name: float(getattr(row, name)) for name in FEATURES}
        response = client.post("/predict", json=house)
        counts["sent"] += 1
        if response.status_code != 200:
            counts["rejected"] += 1
            continue
        counts["predicted"] += 1
        if feedback:
            answer = client.post(
                "/feedback", json={"request_id": response.json()["request_id"], "actual": float(row.actual)}
            )
            if answer.status_code in {401, 403}:  # every later label would be refused too
                raise PermissionError(
                    f"POST /feedback answered {answer.status_code}: {answer.json()['detail']}"
                )
            counts["feedback"] += answer.status_code == 200
    return counts


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


def load_inputs(project_path: Path, env: str | None) -> tuple[pd.DataFrame, dict]:
    """The held-out rows and the scenario settings, through the Kedro project."""
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    bootstrap_project(project_path)
    with KedroSession.create(project_path=project_path, env=env) as session:
        context = session.load_context()
        return context.catalog.load("model_input_test"), context.params["simulation"]["scenarios"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay a traffic scenario against the prediction API.")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--n", type=int, default=1_000, help=f"requests to send (at most {MAX_REQUESTS})")
    parser.add_argument(
        "--rate", type=float, default=200.0, help=f"requests per second (at most {MAX_RATE:g})"
    )
    parser.add_argument("--feedback", action="store_true", help="send each row's ground truth too")
    parser.add_argument("--url", default=os.environ.get("HOUSING_API_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    parser.add_argument("--project-path", default=".", help="Kedro project root (default: cwd)")
    parser.add_argument("--env", default=None, help="Kedro configuration environment")
    parser.add_argument("--allow-remote", action="store_true", help="allow a non-loopback API URL")
    parser.add_argument(
        "--token",
        default=os.environ.get("HOUSING_API_TOKEN"),
        help="bearer token sent with every request: a feedback token for --feedback, a predict "
        "token if the API requires one (default: $HOUSING_API_TOKEN)",
    )
    args = parser.parse_args(argv)

    if not 1 <= args.n <= MAX_REQUESTS:
        parser.error(f"--n must be between 1 and {MAX_REQUESTS}")
    if not 0 < args.rate <= MAX_RATE:
        parser.error(f"--rate must be above 0 and at most {MAX_RATE:g}")
    if not args.allow_remote and not _is_loopback(args.url):
        parser.error(f"--url {args.url} is not a loopback address; pass --allow-remote to send there")

    test, scenarios = load_inputs(Path(args.project_path).resolve(), args.env)
    settings = dict(scenarios.get(args.scenario) or {})
    if args.seed is not None:
        settings["seed"] = args.seed
    rows = make_scenario(test, args.scenario, args.n, settings)
    try:
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        with httpx.Client(base_url=args.url, timeout=30, headers=headers) as client:
            client.get("/ready").raise_for_status()
            counts = replay(client, rows, args.rate, args.feedback)
    except PermissionError as exc:
        print(f"{exc} (pass a feedback token with --token or HOUSING_API_TOKEN)", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(
            f"the API at {args.url} is not ready ({exc}); start it with `python -m housing.serving`",
            file=sys.stderr,
        )
        return 1
    print(
        f"{args.scenario}: sent {counts['sent']}, predicted {counts['predicted']}, "
        f"rejected {counts['rejected']}, feedback {counts['feedback']}"
    )
    return 0 if counts["rejected"] == 0 else 2


if __name__ == "__main__":
    sys.exit(main())
