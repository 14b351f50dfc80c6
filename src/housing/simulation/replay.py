"""Replay production traffic against a running prediction API.

    housing simulate --scenario inflation --n 2000 --rate 200 --feedback

Rows come from a seeded scenario (``simulation.scenarios`` in parameters_simulation.yml)
built on the held-out test rows, read through the Kedro catalog. Each row is one
POST /predict; with ``--feedback`` its ground truth follows through POST /feedback, as a
sale price would; feedback needs a feedback token (``--token`` or ``HOUSING_API_TOKEN``,
sent as ``Authorization: Bearer`` on every request). Bounded in count, rate and time;
loopback only unless --allow-remote.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pandas as pd
from tqdm import tqdm

from housing.contract import FEATURES
from housing.simulation.scenarios import make_scenario


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


def is_loopback(url: str) -> bool:
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


def run(
    scenario: str,
    n: int,
    rate: float,
    feedback: bool,
    url: str,
    seed: int | None,
    project_path: Path,
    env: str | None,
    token: str | None,
) -> int:
    """``housing simulate``: build the scenario, replay it, print the counts. Exit status:
    0 every row predicted, 2 some rows refused by the API, 1 the API not ready or the token
    refused (the message says what to do)."""
    from kedro.io import DatasetError  # noqa: PLC0415

    try:
        test, scenarios = load_inputs(project_path, env)
    except (RuntimeError, ValueError, OSError) as exc:  # no or a broken pyproject.toml [tool.kedro]
        print(f"{project_path} is not a housing project ({exc}); pass --project-path", file=sys.stderr)
        return 1
    except DatasetError as exc:  # the held-out rows come from a training run
        print(f"{exc}; run `housing run --pipeline training` first", file=sys.stderr)
        return 1
    settings = dict(scenarios.get(scenario) or {})
    if seed is not None:
        settings["seed"] = seed
    rows = make_scenario(test, scenario, n, settings)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
            client.get("/ready").raise_for_status()
            counts = replay(client, rows, rate, feedback)
    except PermissionError as exc:
        print(f"{exc} (pass a feedback token with --token or HOUSING_API_TOKEN)", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"the API at {url} is not ready ({exc}); start it with `housing serve`", file=sys.stderr)
        return 1
    print(
        f"{scenario}: sent {counts['sent']}, predicted {counts['predicted']}, "
        f"rejected {counts['rejected']}, feedback {counts['feedback']}"
    )
    return 0 if counts["rejected"] == 0 else 2
