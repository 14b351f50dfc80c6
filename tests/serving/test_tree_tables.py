"""Tree tables: rows and batches through a generic kernel, exactly the booster's answers
(bit for bit), on either kernel (AVX-512 or portable), and out of the way for models they
cannot hold."""

from __future__ import annotations

import subprocess

import lightgbm as lgb
import numpy as np
import pytest

from housing.pipelines.data_processing.features import FEATURES
from housing.serving import tree_build
from housing.serving.compiled import CompiledTreesSettings, TreeCompiler, model_text
from housing.serving.model import ServingModel
from housing.serving.tree_build import build_kernel
from housing.serving.tree_check import threshold_rows
from housing.serving.tree_tables import TablesUnsupported, TreeTables, encode
from tests.serving.test_compiled_trees import compiled_model, settled

PORTABLE = ["-O3", "-march=native", "-mno-avx512f", "-shared", "-fPIC"]


@pytest.fixture(scope="module", params=["native", "portable"])
def kernel(request, tmp_path_factory):
    """The kernel as this machine builds it, and without AVX-512 (the other code path; on
    a CPU without AVX-512 BW and BITALG both are the portable one)."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "portable":
            patch.setattr(tree_build, "FLAGS", PORTABLE)
        return build_kernel("gcc", tmp_path_factory.mktemp("kernel"), timeout=120)


def exact(tables: TreeTables, booster, X: np.ndarray) -> bool:
    """The booster's answers bit for bit, as a batch and one row at a time."""
    expected = booster.predict(X, num_threads=1)
    one_by_one = np.array([tables.predict_row(row) for row in X.tolist()])
    return np.array_equal(tables.predict(X), expected) and np.array_equal(one_by_one, expected)


def booster_and_rows(fitted_models, raw_housing):
    pipeline = fitted_models[1]
    booster = pipeline[-1].booster_
    Z = pipeline[0].transform(raw_housing.loc[:, list(FEATURES)].to_numpy())
    return booster, Z


@pytest.mark.parametrize("rows", [1, 7, 8, 63, 64, 65, 1000, None])
def test_tables_answer_bit_for_bit_as_the_booster(kernel, fitted_models, raw_housing, rows):
    """Every row of the data (and batch sizes around the kernel's blocks of 8 and 64)."""
    booster, Z = booster_and_rows(fitted_models, raw_housing)
    Z = Z[:rows]
    tables = TreeTables(kernel, encode(model_text(booster)), threads=2)
    assert np.array_equal(tables.predict(Z), booster.predict(Z, num_threads=1))
    if rows in (1, 7, None):
        assert exact(tables, booster, Z)


def test_tables_are_exact_on_and_around_every_threshold(kernel, fitted_models):
    booster = fitted_models[1][-1].booster_
    text = model_text(booster)
    rows = threshold_rows(text, booster.num_feature(), n=5_000)
    rows[::7, 3] = np.nan  # LightGBM reads a missing value as 0.0 on these splits
    assert exact(TreeTables(kernel, encode(text), 1), booster, rows)


def test_rows_and_batches_walk_the_tables_and_no_library_is_built(
    fitted_models, tmp_path, raw_housing, monkeypatch
):
    def no_build(*_args):
        raise AssertionError("a library was built although the tables hold the model")

    monkeypatch.setattr(TreeCompiler, "_build", no_build)
    model = compiled_model(fitted_models[1], tmp_path)
    assert settled(model).startswith("tree tables (60 trees, "), model.trees
    assert ";" not in model.trees
    X = raw_housing.loc[:, list(FEATURES)].to_numpy()
    expected = fitted_models[1].predict(X)
    assert np.array_equal(model.predict(X, 2), expected)
    rows = np.array([model.predict_row(row) for row in X[:2000].tolist()])
    np.testing.assert_allclose(rows, expected[:2000], rtol=0, atol=1e-9)


def test_trees_with_a_single_leaf(kernel):
    """Boosting that finds no split leaves one-leaf trees; the tables sum them like any."""
    X = np.random.default_rng(0).normal(size=(200, 3))
    booster = lgb.train({"verbose": -1, "min_data_in_leaf": 500}, lgb.Dataset(X, X[:, 0]), num_boost_round=3)
    assert booster.dump_model()["tree_info"][0]["num_leaves"] == 1
    tables = TreeTables(kernel, encode(model_text(booster)), 1)
    assert exact(tables, booster, X)


def test_trees_of_more_than_64_leaves_beside_smaller_ones(kernel):
    """Up to 64 leaves a tree's surviving leaves fit 64 bits (the AVX-512 path); larger
    trees (the search space goes to 127 leaves) are walked by comparing ranks, in the
    same pass and the same order of summing."""
    booster = _booster(num_leaves=120, min_data_in_leaf=2, learning_rate=0.9, min_gain_to_split=0.2, rounds=8)
    leaves = [t["num_leaves"] for t in booster.dump_model()["tree_info"]]
    assert max(leaves) > 64 and min(leaves) <= 64
    X = np.random.default_rng(3).normal(size=(3_000, 4))
    tables = TreeTables(kernel, encode(model_text(booster)), 2)
    assert exact(tables, booster, X)


def test_models_of_more_than_128_features(kernel):
    """A feature's ranks for a block are one 64-byte vector of their own, and one row's
    ranks are looked up from four (features 0-63, ..., 192-255): the row's width is bounded
    by a node's feature byte, not by a vector."""
    X = np.random.default_rng(5).normal(size=(1_000, 200))
    booster = lgb.train({"verbose": -1}, lgb.Dataset(X, X[:, 0] + X[:, 99] + X[:, 199]), num_boost_round=10)
    assert {0, 99, 199} <= {
        f for tree in booster.dump_model()["tree_info"] for f in _split_features(tree["tree_structure"])
    }
    tables = TreeTables(kernel, encode(model_text(booster)), 2)
    assert exact(tables, booster, X)


def _split_features(node: dict):
    if "split_feature" in node:
        yield node["split_feature"]
        yield from _split_features(node["left_child"])
        yield from _split_features(node["right_child"])


def test_more_trees_than_one_pass_takes(kernel):
    """Batches take trees over the blocks in chunks of 64 (the L2 cache's worth), one row
    finds exit leaves 512 trees at a time: sums carry over from chunk to chunk, still in
    tree order."""
    booster = _booster(num_leaves=15, rounds=600)
    X = np.random.default_rng(4).normal(size=(130, 4))
    tables = TreeTables(kernel, encode(model_text(booster)), 2)
    assert booster.num_trees() == 600
    assert exact(tables, booster, X)


def test_rows_of_the_wrong_width_are_refused(kernel, fitted_models):
    tables = TreeTables(kernel, encode(model_text(fitted_models[1][-1].booster_)), 1)
    with pytest.raises(ValueError, match="rows of 33 features expected, got shape \\(2, 8\\)"):
        tables.predict(np.zeros((2, 8)))
    for width in (8, 34):
        with pytest.raises(ValueError, match=f"a row of 33 features expected, got {width}"):
            tables.predict_row([0.0] * width)


def _booster(**params) -> lgb.Booster:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2_000, 4))
    y = X[:, 0] + X[:, 1] + X[:, 2]
    if params.pop("nan", False):
        X[::10, 1] = np.nan  # a feature with missing values gets splits that route them
    rounds = params.pop("rounds", 5)
    return lgb.train({"verbose": -1, **params}, lgb.Dataset(X, y), num_boost_round=rounds)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"nan": True}, "tree \\d+ has categorical or missing-value splits"),
        ({"categorical": [3], "max_cat_to_onehot": 1}, "tree \\d+ has categorical or missing-value splits"),
        ({"num_leaves": 200, "min_data_in_leaf": 2}, "tree 0 has \\d+ leaves \\(the tables hold 128\\)"),
        ({"max_bin": 1023, "num_leaves": 100, "min_data_in_leaf": 2, "rounds": 40}, "\\d+ thresholds on one"),
        ({"linear_tree": True}, "tree 0 is a linear tree"),
    ],
)
def test_models_the_tables_cannot_hold_are_refused_with_the_reason(params, reason):
    if params.get("categorical"):
        rng = np.random.default_rng(2)
        X = rng.integers(0, 20, size=(2_000, 4)).astype(float)
        booster = lgb.train(
            {"verbose": -1, "max_cat_to_onehot": 1, "min_data_per_group": 5, "cat_smooth": 1},
            lgb.Dataset(X, X[:, 3] % 3 + X[:, 0], categorical_feature=[3]),
            num_boost_round=3,
        )
    else:
        booster = _booster(**params)
    with pytest.raises(TablesUnsupported, match=reason):
        encode(model_text(booster))


def test_a_model_without_tables_goes_through_the_compiled_library(fitted_models, tmp_path, monkeypatch):
    def unsupported(_text):
        raise TablesUnsupported("tree 3 has categorical or missing-value splits")

    monkeypatch.setattr("housing.serving.compiled.encode", unsupported)
    model = compiled_model(fitted_models[1], tmp_path)
    status = settled(model)
    assert status.startswith("compiled trees (trees-")
    assert status.endswith("); tree tables unavailable: tree 3 has categorical or missing-value splits")
    X = np.random.default_rng(0).uniform(1, 5, size=(50, len(FEATURES)))
    X[:, 6], X[:, 7] = 37.5, -121.0
    np.testing.assert_allclose(model.predict(X, 2), fitted_models[1].predict(X), rtol=0, atol=1e-9)


def test_tables_that_answer_differently_are_refused(fitted_models, tmp_path, monkeypatch):
    def off_by_a_cent(text):
        tables = encode(text)
        tables.leaf[0, 0] += 0.01
        return tables

    monkeypatch.setattr("housing.serving.compiled.encode", off_by_a_cent)
    status = settled(compiled_model(fitted_models[1], tmp_path))
    assert "; tree tables unavailable: tree tables (60 trees" in status
    assert "differs from the booster by up to 0.01" in status


def test_the_kernel_is_built_once_per_machine_and_a_failed_build_says_why(tmp_path, monkeypatch):
    first = build_kernel("gcc", tmp_path, 120)

    def no_compiler(*_args, **_kwargs):
        raise AssertionError("compiled again although the cache holds the kernel")

    monkeypatch.setattr(subprocess, "run", no_compiler)
    assert build_kernel("gcc", tmp_path, 120) == first
    monkeypatch.undo()
    monkeypatch.setattr(tree_build, "FLAGS", [*tree_build.FLAGS, "-Werror=this-is-no-flag"])
    with pytest.raises(RuntimeError, match="gcc failed on tree_kernel.c"):
        build_kernel("gcc", tmp_path, 120)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == [first.name]


def test_without_a_compiler_batches_fall_back_and_say_why(fitted_models, tmp_path):
    model = ServingModel("m", 1, "champion", fitted_models[1], explain_rows=False)
    model.compile_trees(
        TreeCompiler(CompiledTreesSettings(cache_dir=str(tmp_path), compiler="no-such-cc"), 2)
    )
    status = settled(model)
    assert "; tree tables unavailable:" in status and "no-such-cc" in status


def test_tables_can_be_turned_off(fitted_models, tmp_path):
    """``compiled_trees.tables: false``: rows and batches go through the compiled library."""
    model = compiled_model(fitted_models[1], tmp_path, tables=False)
    status = settled(model)
    assert status.startswith("compiled trees (") and "tables" not in status
    X = np.random.default_rng(0).uniform(1, 5, size=(20, len(FEATURES)))
    X[:, 6], X[:, 7] = 37.5, -121.0
    np.testing.assert_allclose(model.predict(X, 2), fitted_models[1].predict(X), rtol=0, atol=1e-9)
