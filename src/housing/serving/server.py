"""uvicorn, with the limits a slow or hostile client needs (``server:`` in serving.yml).

uvicorn's own limits cover idle keep-alive connections (``timeout_keep_alive``) and the
number of connections and tasks (``limit_concurrency``: beyond it, 503 at once). Its
httptools parser, the fast one uvicorn picks by default, has neither a deadline for a
request to arrive nor a cap on the size of its headers (``h11_max_incomplete_event_size``
applies to the h11 parser only). So a client sending one byte a second would hold a
connection, and with ``limit_concurrency`` all of them, forever. ``GuardedHttpTools``
adds both: a request must arrive whole within ``request_timeout`` seconds of its first
byte (else 408 and the connection is closed; a connection that sends nothing is closed
after the same time), and its request line and headers must fit in ``max_head_bytes``
(else 431). A handful of attribute checks per network read: nothing per request that the
serving benchmark can see.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True)
class ServerLimits:
    timeout_keep_alive: float = 5.0
    request_timeout: float = 30.0
    max_head_bytes: int = 65_536
    limit_concurrency: int | None = 256
    backlog: int = 2048

    @classmethod
    def from_conf(cls, conf: dict[str, Any] | None) -> ServerLimits:
        conf = dict(conf or {})
        unknown = set(conf) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"serving.yml server: unknown setting(s) {sorted(unknown)}")
        limits = cls(**conf)
        if limits.request_timeout <= 0 or limits.timeout_keep_alive <= 0 or limits.max_head_bytes < 1024:
            raise ValueError("serving.yml server: timeouts must be > 0 and max_head_bytes at least 1024")
        return limits

    def uvicorn_kwargs(self) -> dict[str, Any]:
        return {
            "http": guarded_protocol(self.request_timeout, self.max_head_bytes),
            "timeout_keep_alive": self.timeout_keep_alive,
            "limit_concurrency": self.limit_concurrency,
            "backlog": self.backlog,
            "h11_max_incomplete_event_size": self.max_head_bytes,  # if h11 is ever chosen
        }


def _response(status: int, reason: str, detail: str) -> bytes:
    body = json.dumps({"detail": detail}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops and uvicorn answers, via
    ``send_400_response``, which turns it into the 431."""


class GuardedHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol with a deadline per request and a cap on its head."""

    request_timeout = 30.0
    max_head_bytes = 65_536
    too_large = (
        "Request Header Fields Too Large",
        "the request line and headers exceed {} bytes (serving.yml server.max_head_bytes); send shorter headers",
    )

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_head, self._head_bytes, self._started = True, 0, False
        self._parsed, self._too_large = 0, False
        self._deadline: asyncio.TimerHandle | None = self.loop.call_later(
            self.request_timeout, self._too_slow
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._started = True, True
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.request_timeout, self._too_slow)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        """Each head counted as parsed (a whole head in one read) ..."""
        self._parsed += size
        if self._parsed > self.max_head_bytes:
            self._too_large = True
            raise _HeadTooLarge

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            reason, detail = self.too_large
            self._refuse(431, reason, detail.format(self.max_head_bytes))
        else:
            super().send_400_response(msg)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes, self._parsed = False, 0, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()  # the request is in: how long the app takes is not the client's doing
        self._started = False
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            # ... and as read, while incomplete: httptools buffers a header until its end,
            # so one endless header would grow without ever reaching on_header
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                reason, detail = self.too_large
                self._refuse(431, reason, detail.format(self.max_head_bytes))

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if not self._started:  # nothing sent at all: no request to answer
            self.transport.close()
            return
        self._refuse(
            408,
            "Request Timeout",
            f"the request did not arrive whole within {self.request_timeout:g} s "
            "(serving.yml server.request_timeout); send it at once",
        )

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        self._disarm()
        self.logger.warning("Refused a request from %s: %s", self.client, detail)
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            self.transport.write(_response(status, reason, detail))
        self.transport.close()


def guarded_protocol(request_timeout: float, max_head_bytes: int) -> type[GuardedHttpTools]:
    """The protocol class uvicorn instantiates per connection, with these limits."""
    return type(
        "GuardedHttpTools",
        (GuardedHttpTools,),
        {"request_timeout": float(request_timeout), "max_head_bytes": int(max_head_bytes)},
    )
