"""The prediction log's single writer: group commit off the event loop.

Why a thread and not the event loop: a commit is a synchronous SQLAlchemy call (an fsync
for SQLite, a network round trip for PostgreSQL); on the loop, one slow commit would
stall every request and /health with it. Why one writer and not the thread pool: commits
that queue up while one runs go out together in the next transaction, so under load the
database sees one transaction per batch of requests instead of one per request (SQLite
takes one writer at a time anyway).

Durability is unchanged: each request awaits the commit of its own record before it is
answered, so an answered prediction is in the log even if the process is killed right
after. A failed commit fails every request of its batch (503 naming the log). The queue
is bounded (``prediction_log.max_queue``): when the database falls behind, requests get a
503 at once instead of growing memory without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


class QueueFull(RuntimeError):
    """More requests wait for the log than ``prediction_log.max_queue``."""


class WriterClosed(RuntimeError):
    """The API is shutting down: the writer takes no new records."""


@dataclass
class _Item:
    rows: list[Any]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future, error: BaseException | None) -> None:
    if future.done():  # the request was cancelled (client gone): its record is logged anyway
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class LogWriter:
    """Takes records from any number of requests; one thread commits them in groups with
    ``commit(rows)`` (one transaction). ``expected`` are the failures ``commit`` raises
    for a database that cannot take the write (the others are bugs, logged here)."""

    def __init__(
        self,
        commit: Callable[[list[Any]], None],
        expected: type[Exception],
        max_queue: int = 10_000,
        max_commit_rows: int = 10_000,
        after: Callable[[], None] | None = None,
    ):
        self.commit, self.expected = commit, expected
        self.after = after  # upkeep once a group is answered (no request waits for it)
        self.max_queue = max_queue  # requests waiting (a batch counts once)
        self.max_commit_rows = max_commit_rows  # rows per transaction (one item is never split)
        self._queue: deque[_Item] = deque()
        self._ready = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()

    async def write(self, rows: list[Any]) -> None:
        """Queue the rows and wait until the transaction that holds them has committed."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._ready:
            if self._closing:
                raise WriterClosed("the API is shutting down; retry on another replica")
            if len(self._queue) >= self.max_queue:
                raise QueueFull(
                    f"{len(self._queue)} requests are waiting for the prediction log "
                    "(serving.yml prediction_log.max_queue)"
                )
            self._queue.append(_Item(rows, future, loop))
            self._ready.notify()
        await future

    def queued(self) -> int:
        return len(self._queue)

    def _take(self) -> list[_Item] | None:
        """Everything queued, up to max_commit_rows; ``None`` once closed and drained."""
        with self._ready:
            while not self._queue and not self._closing:
                self._ready.wait()
            if not self._queue:
                return None
            group = [self._queue.popleft()]
            rows = len(group[0].rows)
            while self._queue and rows + len(self._queue[0].rows) <= self.max_commit_rows:
                item = self._queue.popleft()
                group.append(item)
                rows += len(item.rows)
            return group

    def _run(self) -> None:
        while (group := self._take()) is not None:
            error: str | None = None
            try:
                self.commit([row for item in group for row in item.rows])
            except self.expected as exc:  # the database: 503, retry later
                error, kind = str(exc), self.expected
            except Exception as exc:  # a bug: 500, and the traceback here
                logger.exception("Writing %d requests to the prediction log failed", len(group))
                error, kind = f"writing the prediction log failed: {exc!r}", RuntimeError
            for item in group:
                # a fresh exception per request: one instance raised in many tasks would
                # collect every task's traceback
                failure = None if error is None else kind(error)
                with contextlib.suppress(RuntimeError):  # that request's loop has closed
                    item.loop.call_soon_threadsafe(_settle, item.future, failure)
            if self.after is not None and error is None:
                try:
                    self.after()
                except Exception:
                    logger.warning("Prediction-log upkeep failed", exc_info=True)

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then stop (blocking: call it off the event loop)."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error("The prediction log writer did not drain within %s s", timeout)
