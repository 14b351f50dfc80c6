"""The champion's LightGBM trees natively: as tree tables (tree_tables.py) where the model
fits them, else as compiled code (treelite reads the booster, tl2cgen writes C, the
system's C compiler builds a shared library).

Why: the trees are most of a request, and native code walks them several times faster
than the booster, for one row and for batches (``python benchmarks/serving.py`` prints
each path). Why like this: nothing is built on the request path. A model starts on its
booster; its tables are ready in about a second. For a model they cannot hold, a child
process (niced, bounded in time) builds the library, for minutes, into a cache keyed by
the trees themselves; a reload, another replica with the same cache, or a restart finds
it ready. Either is used only after it answered exactly as the booster on rows that sit
on every split threshold (tree_check.py). No compiler, a failed build or a mismatch: the
booster keeps serving and ``GET /model`` (``trees``) says why.

The builds themselves (the tables' kernel; the library's code generation, its fixes, the
compiler) are ``tree_build.py``, whose command line the child process runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from housing.serving.tree_build import CODEGEN, build_kernel
from housing.serving.tree_check import one_by_one, same_answers
from housing.serving.tree_tables import TreeTables, encode, split_rows

logger = logging.getLogger(__name__)


class CompiledTreesSettings(BaseModel):
    """``compiled_trees:`` of serving.yml."""

    model_config = ConfigDict(extra="forbid", strict=True)
    enabled: bool = True
    cache_dir: str = "data/06_models/compiled_trees"
    compiler: str = Field("gcc", min_length=1, description="C compiler command (tl2cgen toolchain)")
    jobs: int = Field(1, ge=1, le=64, description="compiler processes at once")
    tables: bool = Field(
        True,
        description="rows and batches by tree tables (tree_tables.py) where the model fits "
        "them; the compiled library otherwise",
    )
    timeout_seconds: float = Field(1800, gt=0)


def model_text(booster: Any) -> str:
    """The trees a prediction uses, as LightGBM writes them."""
    return booster.model_to_string(num_iteration=_iterations(booster))


def cache_key(text: str) -> str:
    """The trees themselves (not a version number: a registry can be rebuilt), with the
    code generator's version: the same key means the same library."""
    import tl2cgen  # noqa: PLC0415

    digest = hashlib.sha256(text.encode())
    digest.update(f"tl2cgen {tl2cgen.__version__} {CODEGEN}".encode())
    return digest.hexdigest()[:24]


def _iterations(booster: Any) -> int:
    return booster.best_iteration if booster.best_iteration > 0 else -1


class CompiledTrees:
    """A built library: one row through its ``predict`` and a batch through its
    ``predict_batch``, by ctypes (which lets go of the interpreter during the call), the
    batch split over ``threads`` threads."""

    def __init__(self, path: Path, n_features: int, threads: int) -> None:
        self.path = path
        self._lib = ctypes.CDLL(str(path))
        if self._lib.get_num_feature() != n_features:
            raise ValueError(f"{path} takes {self._lib.get_num_feature()} features, the model {n_features}")
        self._predict = self._lib.predict
        self._predict.restype = None
        self._predict_batch = self._lib.predict_batch
        self._predict_batch.restype = None
        self._predict_batch.argtypes = [ctypes.c_void_p, ctypes.c_longlong, ctypes.c_void_p]
        # union Entry {int missing; double fvalue; int qvalue;}: a double per feature
        self._row = ctypes.c_double * n_features
        self._threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self._threads - 1) if self._threads > 1 else None

    def predict_row(self, features: Sequence[float]) -> float:
        out = ctypes.c_double(0.0)  # predict() adds each tree's leaf to it
        self._predict(self._row(*features), 0, ctypes.byref(out))
        return out.value

    def predict(self, Z: np.ndarray) -> np.ndarray:
        return split_rows(
            Z,
            self._pool,
            self._threads,
            lambda rows, into: self._predict_batch(rows.ctypes.data, len(rows), into.ctypes.data),
        )


def _release_free_memory() -> None:
    """Hand freed heap pages back to the system (glibc ``malloc_trim``). The model text
    is tens of MB, allocated and freed on each load; glibc keeps such freed memory in the
    heap, where it would count as resident memory that grows with every reload."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class TreeCompiler:
    """Prepares native trees for the served model in the background. First, in a second
    or so, its tree tables (tree_tables.py) go to ``on_tables`` once they answer as the
    booster does, one row at a time and in batches (or the reason they cannot serve, as a
    string). Only a model the tables cannot hold (or with ``tables: false``) gets a
    library, built (or found) and handed to ``on_ready`` after the same check.

    One worker thread for the process and one pending model: a reload replaces the model
    waiting for its trees, so a burst of reloads never queues models (and their memory)
    behind a build. A library checked once is handed to later models with the same trees
    (a reload of the same version) without loading or checking it again, and a registry
    version seen before is not even read again: its trees cannot change."""

    def __init__(self, settings: CompiledTreesSettings, threads: int) -> None:
        self.settings = settings
        self.threads = threads
        self._verified: dict[str, CompiledTrees] = {}  # cache key -> checked library
        self._tables: dict[str, TreeTables | str] = {}  # cache key -> checked tables, or why not
        self._keys: dict[tuple, str] = {}  # registry identity -> cache key
        self._changed = threading.Condition()
        self._pending: tuple | None = None
        self._busy = False
        self._worker: threading.Thread | None = None

    def start(
        self,
        booster: Any,
        on_ready: Callable[[CompiledTrees], None],
        report: Callable[[str], None],
        identity: tuple | None = None,
        on_tables: Callable[[TreeTables | str], None] | None = None,
    ) -> None:
        """Returns at once; the worker reports progress and hands the tables and the
        library over. ``identity`` (name, version, run id) names immutable trees."""
        with self._changed:
            self._pending = (booster, on_ready, report, identity, on_tables)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="compile-trees", daemon=True)
                self._worker.start()
            self._changed.notify_all()

    def wait(self, timeout: float) -> bool:
        """Until the latest model handed in is settled (for tests and benchmarks)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._pending is None and not self._busy, timeout)

    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending is not None)
                job, self._pending, self._busy = self._pending, None, True
            try:
                self._run(*job)
            finally:
                del job  # the model it refers to may be swapped out: let it go
                _release_free_memory()
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    def _run(self, booster: Any, on_ready, report, identity: tuple | None, on_tables) -> None:
        try:
            key = self._keys.get(identity) if identity else None
            text = None
            if key is None:
                text = model_text(booster)
                key = cache_key(text)  # the trees themselves: safe to remember at once
                if identity:
                    self._keys[identity] = key
            if on_tables is not None and self.settings.tables:
                tables = self._tables_for(key, booster, text)
                on_tables(tables)
                if isinstance(tables, TreeTables):
                    return  # rows and batches walk the tables: no library to build
            trees = self._verified.get(key)
            if trees is None:
                text = text or model_text(booster)
                trees = self._check(self._library(booster, key, report), booster, text)
                self._verified[key] = trees
        except Exception as exc:  # any failure leaves the booster serving
            logger.warning("Compiled trees unavailable, the booster serves: %s", exc)
            report(f"compiled trees unavailable: {exc}")
            return
        on_ready(trees)

    def _tables_for(self, key: str, booster: Any, text: str | None) -> TreeTables | str:
        found = self._tables.get(key)
        if found is None:
            try:
                kernel = build_kernel(
                    self.settings.compiler, Path(self.settings.cache_dir), self.settings.timeout_seconds
                )
                text = text or model_text(booster)
                found = TreeTables(kernel, encode(text), self.threads)
                same_answers(found.predict, booster, text, found)
                same_answers(one_by_one(found.predict_row), booster, text, found)
            # a model the tables cannot hold raises TablesUnsupported, a ValueError
            except (RuntimeError, ValueError, OSError, subprocess.SubprocessError) as exc:
                logger.warning("Tree tables unavailable: %s", exc)
                found = f"tree tables unavailable: {exc}"
            self._tables[key] = found
        return found

    def _library(self, booster: Any, key: str, report: Callable[[str], None]) -> Path:
        cache = Path(self.settings.cache_dir)
        cache.mkdir(parents=True, exist_ok=True)
        library = cache / f"trees-{key}.so"
        if not library.exists():
            report(f"compiling the trees with {self.settings.compiler} (minutes)")
            self._build(booster, library)
        return library

    def _check(self, library: Path, booster: Any, text: str) -> CompiledTrees:
        trees = CompiledTrees(library, booster.num_feature(), self.threads)
        same_answers(one_by_one(trees.predict_row), booster, text, library.name)
        same_answers(trees.predict, booster, text, library.name)
        return trees

    def _build(self, booster: Any, library: Path) -> None:
        """In a child process at low priority: the compiler never takes the server's
        interpreter, and at most one process per cache builds a given library."""
        with tempfile.TemporaryDirectory(prefix="housing-trees-") as tmp:
            model = Path(tmp) / "model.txt"
            booster.save_model(model, num_iteration=_iterations(booster))
            with open(library.with_suffix(".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it
                if library.exists():
                    return
                command = [sys.executable, "-m", "housing.serving.tree_build", str(model), str(library)]
                command += ["--compiler", self.settings.compiler, "--jobs", str(self.settings.jobs)]
                done = subprocess.run(
                    command,
                    capture_output=True,
                    text=True,
                    timeout=self.settings.timeout_seconds,
                    preexec_fn=lambda: os.nice(10),
                    check=False,
                )
                if done.returncode != 0:
                    lines = (done.stderr or done.stdout).strip().splitlines()
                    raise RuntimeError(lines[-1] if lines else f"exit status {done.returncode}")
