"""The champion's trees held as tables and walked by a small C kernel (``tree_kernel.c``),
for batches and for one row: several times faster than the compiled if-else code on 1,000
rows, faster for one row in a server (where the compiled code's megabytes come from
memory at each request), and ready in about a second instead of minutes (``python
benchmarks/serving.py`` prints each path).

The kernel knows no model: it is built once per machine (the system's compiler,
``-march=native``) and cached by its source and the CPU's flags. A model becomes tables
here, in numpy: per feature its sorted thresholds, per tree its nodes as byte tables
(feature, threshold rank, children), its leaves left to right with their values, per
split the leaves of its left subtree (the leaves a row it sends right cannot reach: what
QuickScorer rules out), and for one row a compact copy of each tree of up to 64 leaves.
The encoding is exact (a value is compared through its rank among the thresholds, leaves
are summed in tree order), and ``TreeCompiler`` still checks the tables against the
booster before any request uses them. Models the tables cannot hold (categorical or
missing-value splits, linear trees, more than 128 leaves or 256 features, more than 255
thresholds on a feature) say why and keep the other paths.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NODES = 256  # per tree in the tables: up to 127 splits and 128 leaves
BLOCK = 64  # rows the kernel takes together (tree_kernel.c)
SMALL = 64  # splits of a tree in the one-row tables (tree_kernel.c)
MAX_FEATURES = 256  # a node's feature is a byte
MAX_THRESHOLDS = 255  # a rank fits a byte


class TablesUnsupported(ValueError):
    """The model has something the tables do not encode; the reason says what."""


@dataclass(frozen=True)
class Tables:
    """A LightGBM model as the kernel reads it (``tables_t`` in tree_kernel.c)."""

    n_features: int
    thresholds: np.ndarray  # float64, each feature's ascending, back to back
    offsets: np.ndarray  # int32 [n_features + 1]
    feature: np.ndarray  # uint8 [trees, NODES]
    rank: np.ndarray  # uint8 [trees, NODES]
    child: np.ndarray  # uint8 [trees, NODES, 2]
    leaf: np.ndarray  # float64 [trees, NODES // 2]
    first_leaf: np.ndarray  # uint8 [trees]
    depth: np.ndarray  # uint8 [trees]
    clear: np.ndarray  # uint32 [trees, 64, 8] per split (trees of up to 64 leaves): byte j of
    # the leaves left of it (bit b: leaf 8j + b), repeated in the 4 bytes
    small: np.ndarray  # uint8 [trees, 4, SMALL] the one-row walk's copy of trees of up to 64
    # leaves: each split's feature, its rank, then each split's left and right child in turn
    # (a leaf: SMALL + its position)


def _trees(text: str) -> tuple[int, list[dict[str, str]]]:
    """The feature count and each tree's fields, from LightGBM's model text."""
    n_features, trees, tree = 0, [], None
    for line in text.splitlines():
        if line.startswith("max_feature_idx="):
            n_features = int(line.partition("=")[2]) + 1
        elif line.startswith("Tree="):
            tree = {}
            trees.append(tree)
        elif line.startswith("end of trees"):
            break
        elif tree is not None and "=" in line:
            key, _, value = line.partition("=")
            tree[key] = value
    return n_features, trees


def _ints(tree: dict[str, str], key: str) -> list[int]:
    return [int(v) for v in tree[key].split()]


def encode(text: str) -> Tables:
    """The trees of ``text`` (``compiled.model_text``: the iterations a prediction uses)."""
    n_features, trees = _trees(text)
    if n_features > MAX_FEATURES:
        raise TablesUnsupported(f"{n_features} features (the tables hold {MAX_FEATURES})")
    split: list[set[float]] = [set() for _ in range(n_features)]
    for number, tree in enumerate(trees):
        if int(tree["num_leaves"]) == 1:
            continue
        if int(tree.get("is_linear", "0")):
            raise TablesUnsupported(f"tree {number} is a linear tree")
        # decision_type: bit 0 categorical, bits 2-3 the missing-value type (0: none)
        if any(d & 0b1101 for d in _ints(tree, "decision_type")):
            raise TablesUnsupported(f"tree {number} has categorical or missing-value splits")
        for feature, value in zip(_ints(tree, "split_feature"), tree["threshold"].split(), strict=True):
            split[feature].add(float(value))
    ordered = [np.array(sorted(values), dtype=np.float64) for values in split]
    if (most := max((len(v) for v in ordered), default=0)) > MAX_THRESHOLDS:
        raise TablesUnsupported(f"{most} thresholds on one feature (the tables hold {MAX_THRESHOLDS})")
    rank_of = [{value: i for i, value in enumerate(values)} for values in ordered]

    count = len(trees)
    feature = np.zeros((count, NODES), np.uint8)
    rank = np.full((count, NODES), 255, np.uint8)  # leaves: never "above", so "left" = itself
    child = np.zeros((count, NODES, 2), np.uint8)
    leaf = np.zeros((count, NODES // 2))
    first_leaf = np.zeros(count, np.uint8)
    depth = np.zeros(count, np.uint8)
    clear = np.zeros((count, 64, 8), np.uint32)
    for k, tree in enumerate(trees):
        leaves = int(tree["num_leaves"])
        if leaves > NODES // 2:
            raise TablesUnsupported(f"tree {k} has {leaves} leaves (the tables hold {NODES // 2})")
        splits = leaves - 1  # splits are nodes 0..splits-1, then the leaves left to right
        first_leaf[k] = splits
        values = [float(v) for v in tree["leaf_value"].split()]
        child[k, splits : splits + leaves] = np.arange(splits, splits + leaves)[:, None]
        if not splits:
            leaf[k, 0] = values[0]
            continue
        left, right = _ints(tree, "left_child"), _ints(tree, "right_child")
        order = _leaves_in_order(left, right)
        position = {number: i for i, (number, _, _) in enumerate(order)}
        leaf[k, :leaves] = [values[number] for number, _, _ in order]
        depth[k] = max(level for _, _, level in order)
        if leaves <= 64:
            clear[k, :splits] = _left_leaves(np.array([lefts for _, lefts, _ in order], np.uint64), splits)

        def node(c: int, splits: int = splits, position: dict = position) -> int:  # LightGBM: leaf i is ~i
            return c if c >= 0 else splits + position[~c]

        features = _ints(tree, "split_feature")
        for i, value in enumerate(tree["threshold"].split()):
            feature[k, i] = features[i]
            rank[k, i] = rank_of[features[i]][float(value)]
            child[k, i] = node(left[i]), node(right[i])
    offsets = np.zeros(n_features + 1, np.int32)
    offsets[1:] = np.cumsum([len(v) for v in ordered])
    thresholds = np.concatenate(ordered) if offsets[-1] else np.zeros(1)
    small = _small(feature, rank, child, first_leaf)
    return Tables(
        n_features, thresholds, offsets, feature, rank, child, leaf, first_leaf, depth, clear, small
    )


def _small(feature: np.ndarray, rank: np.ndarray, child: np.ndarray, first_leaf: np.ndarray) -> np.ndarray:
    """The one-row walk's 256 bytes per tree of up to 64 leaves (the others: zeros, walked
    in the batch tables): its splits' features and ranks, then their children, a leaf
    numbered from SMALL. A tree of one leaf starts on it: its node 0 has rank 255 (no row's
    rank is above it) and that leaf as both children."""
    small = np.zeros((len(first_leaf), 4, SMALL), np.uint8)
    fits = first_leaf < SMALL
    splits = first_leaf[fits, None, None].astype(np.int64)
    to = child[fits, :SMALL].astype(np.int64)
    to = np.where(to < splits, to, SMALL + to - splits)
    small[fits, 0] = feature[fits, :SMALL]
    small[fits, 1] = rank[fits, :SMALL]
    small[fits, 2:] = to.reshape(-1, 2, SMALL)
    return small


def _left_leaves(lefts: np.ndarray, splits: int) -> np.ndarray:
    """Per split, the leaves of its left subtree (those a row it sends right cannot reach)
    as the 8 bytes of a 64-bit set, leaf j at bit j, each byte repeated 4 times (the
    kernel's broadcast operand). ``lefts``: per leaf, left to right, a bit per split it
    lies left of."""
    below = (lefts[None, :] >> np.arange(splits, dtype=np.uint64)[:, None]) & np.uint64(1)  # [split, leaf]
    bytes_ = np.packbits(below.astype(np.uint8), axis=1, bitorder="little")  # [split, leaves / 8]
    out = np.zeros((splits, 8), np.uint32)
    out[:, : bytes_.shape[1]] = bytes_.astype(np.uint32) * 0x01010101
    return out


def _leaves_in_order(left: list[int], right: list[int]) -> list[tuple[int, int, int]]:
    """Each leaf, left to right: (LightGBM's number for it, a bit per split it lies left
    of, its depth). QuickScorer's rule needs that order: the exit leaf is the leftmost
    one none of whose left-of splits sends the row right."""
    found, stack = [], [(0, 0, 0)]  # (child: a split, or ~leaf; left-of bits; depth)
    while stack:
        at, lefts, level = stack.pop()
        if at < 0:
            found.append((~at, lefts, level))
            continue
        stack.append((right[at], lefts, level + 1))
        stack.append((left[at], lefts | 1 << at, level + 1))  # popped first
    return found


class _Struct(ctypes.Structure):
    _fields_ = [("n_features", ctypes.c_int32), ("n_trees", ctypes.c_int32)] + [
        (name, ctypes.c_void_p)
        for name in (
            "thresholds",
            "offsets",
            "feature",
            "rank",
            "child",
            "leaf",
            "first_leaf",
            "depth",
            "clear",
            "small",
        )
    ]


def split_rows(
    Z: np.ndarray, pool: ThreadPoolExecutor | None, threads: int, run: Callable, align: int = 1
) -> np.ndarray:
    """``run(rows, into)`` over ``threads`` contiguous slices of ``Z`` at once (one on
    this thread), into one output: the native code lets go of the interpreter. Slices
    start at multiples of ``align`` rows (the kernel's blocks: a slice of 5 rows would
    cost a whole block, so a small batch stays on one thread)."""
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    out = np.empty(len(Z))
    units = -(-len(Z) // align)
    bounds = np.minimum(np.linspace(0, units, min(threads, max(units, 1)) + 1, dtype=int) * align, len(Z))
    chunks = [(Z[a:b], out[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    others = [pool.submit(run, *chunk) for chunk in chunks[1:]] if pool else []
    if chunks:
        run(*chunks[0])
    for done in others:
        done.result()
    return out


class TreeTables:
    """The tables of one model and the kernel that walks them; ``predict`` splits a batch
    over ``threads`` threads."""

    def __init__(self, kernel: Path, tables: Tables, threads: int) -> None:
        self.kernel = kernel
        self._lib = ctypes.CDLL(str(kernel))
        self._lib.kernel_isa.restype = ctypes.c_char_p
        self.isa = self._lib.kernel_isa().decode()
        self._predict = self._lib.predict
        self._predict.restype = ctypes.c_int
        self._predict.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
        self._predict_one = self._lib.predict_one
        self._predict_one.restype = ctypes.c_double
        self._row = ctypes.c_double * tables.n_features
        self.tables = tables  # the struct below points into its arrays: keep them alive
        self.n_features = tables.n_features
        arrays = [getattr(tables, name) for name, _ in _Struct._fields_[2:]]
        self._struct = _Struct(tables.n_features, len(tables.depth), *(a.ctypes.data for a in arrays))
        self._struct_ref = ctypes.byref(self._struct)
        self._threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self._threads - 1) if self._threads > 1 else None

    def predict_row(self, features: Sequence[float]) -> float:
        """One row of the model's features."""
        if len(features) != self.n_features:
            raise ValueError(f"a row of {self.n_features} features expected, got {len(features)}")
        return self._predict_one(self._struct_ref, self._row(*features))

    def __repr__(self) -> str:
        return f"tree tables ({len(self.tables.depth)} trees, {self.isa} kernel)"

    def predict(
        self, X: np.ndarray, features: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> np.ndarray:
        """Rows of the model's features; with ``features``, raw rows that it turns into
        them, slice by slice on the same threads as the trees."""
        struct = ctypes.byref(self._struct)

        def run(rows: np.ndarray, into: np.ndarray) -> None:
            Z = np.ascontiguousarray(features(rows) if features else rows, dtype=np.float64)
            if Z.ndim != 2 or Z.shape[1] != self.n_features:
                raise ValueError(f"rows of {self.n_features} features expected, got shape {Z.shape}")
            if self._predict(struct, Z.ctypes.data, len(Z), into.ctypes.data):
                raise MemoryError(f"tree tables: no scratch memory for {len(Z)} rows")

        return split_rows(X, self._pool, self._threads, run, align=BLOCK)
