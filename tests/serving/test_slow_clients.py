"""Slow and hostile clients against a real uvicorn on 127.0.0.1, with the limits of
serving.yml's ``server:`` (small ones here, so the test takes seconds): connections that
trickle one byte a second are answered 408 and closed, idle ones are closed, an oversized
head is a 431, and /health keeps answering."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import httpx
import pytest
import uvicorn

from housing.serving.app import create_app
from housing.serving.server import ServerLimits
from tests.conftest import PROJECT_ROOT, free_port

LIMITS = ServerLimits(timeout_keep_alive=2, request_timeout=2, max_head_bytes=8192, limit_concurrency=8)
SLOW_CLIENTS = 4


@pytest.fixture
def url(config, registry):
    port = free_port()
    app = create_app(config, registry.source())
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **LIMITS.uvicorn_kwargs())
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    try:
        while True:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def trickle(
    port: int, head: bytes, outcome: dict, key: int, at_once: bytes = b"", seconds: float = 8.0
) -> None:
    """Send ``at_once``, then ``head`` one byte a second (bounded); record what the server
    answered and when it closed the connection."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(at_once)
        answer = b""
        for byte in head:
            if time.monotonic() - start > seconds:
                break
            try:
                sock.sendall(bytes([byte]))
                chunk = sock.recv(4096)
            except TimeoutError:
                continue  # nothing to read yet: the next byte after a second
            except OSError:
                break  # reset: closed by the server
            if not chunk:
                break  # closed by the server
            answer += chunk
        outcome[key] = (answer, time.monotonic() - start)


def test_trickling_clients_are_cut_off_and_health_still_answers(url):
    port = int(url.rsplit(":", 1)[1])
    head = (
        b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\nX-Slow: " + b"a" * 60
    )
    outcome: dict[int, tuple[bytes, float]] = {}
    threads = [threading.Thread(target=trickle, args=(port, head, outcome, i)) for i in range(SLOW_CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    # while they trickle, the API answers others
    assert httpx.get(f"{url}/health", timeout=2).json() == {
        "status": "ok",
        "detail": None,
        "model_version": None,
    }
    for thread in threads:
        thread.join(timeout=15)
    assert len(outcome) == SLOW_CLIENTS
    for answer, seconds in outcome.values():
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"server.request_timeout" in answer
        assert seconds < LIMITS.request_timeout + 2.5  # cut off, not left to the client
    assert httpx.get(f"{url}/health", timeout=2).status_code == 200


def test_a_slow_body_is_cut_off_too(url):
    port = int(url.rsplit(":", 1)[1])
    outcome: dict[int, tuple[bytes, float]] = {}
    head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 300\r\n\r\n"
    )
    trickle(port, b"{" * 100, outcome, 0, at_once=head)  # the head at once, then the body trickles
    answer, seconds = outcome[0]
    assert answer.startswith(b"HTTP/1.1 408 ") and seconds < LIMITS.request_timeout + 2.5
    assert httpx.get(f"{url}/health", timeout=2).status_code == 200


def test_idle_connections_cannot_exhaust_the_concurrency_limit(url):
    port = int(url.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(LIMITS.limit_concurrency)]
    try:
        full = httpx.get(f"{url}/health", timeout=2)
        assert full.status_code == 503  # uvicorn's limit_concurrency at work
        time.sleep(LIMITS.request_timeout + 1)
        for sock in idle:
            assert sock.recv(100) == b""  # closed by the server, no answer to no request
        assert httpx.get(f"{url}/health", timeout=2).status_code == 200
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.parametrize("size", [20_000, 1_048_576])
def test_an_oversized_head_is_a_431(url, size):
    response = httpx.post(
        f"{url}/feedback",
        json={"request_id": "x", "actual": 1.0},
        headers={"Authorization": "Bearer " + "A" * size},
    )
    assert response.status_code == 431
    assert "server.max_head_bytes" in response.json()["detail"]
    assert httpx.get(f"{url}/health", timeout=2).status_code == 200


def test_serving_yml_sets_the_limits():
    import yaml  # noqa: PLC0415

    conf = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "serving.yml").read_text())
    limits = ServerLimits.from_conf(conf["server"])
    assert limits.request_timeout > 0 and limits.limit_concurrency and limits.max_head_bytes >= 8192
    kwargs = limits.uvicorn_kwargs()
    assert kwargs["http"].request_timeout == limits.request_timeout
    with pytest.raises(ValueError, match="unknown setting"):
        ServerLimits.from_conf({"timeout_keepalive": 5})
