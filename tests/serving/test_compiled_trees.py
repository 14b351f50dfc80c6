"""Compiled trees (the library for models the tree tables cannot hold, or with ``tables:
false``): built off the request path, used only once they answer exactly as the booster,
cached by the trees, and never in the way when they cannot be built."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from housing.pipelines.data_processing.features import FEATURES
from housing.serving.compiled import CompiledTreesSettings, TreeCompiler, cache_key, model_text
from housing.serving.config import ServingConfig, SettingsError
from housing.serving.model import ServingModel


def settled(model: ServingModel, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            model.trees.startswith(("tree tables (", "compiled trees ("))
            or "compiled trees unavailable" in model.trees
        ):
            return model.trees
        time.sleep(0.05)
    raise TimeoutError(f"trees still {model.trees!r} after {timeout} s")


def compiled_model(pipeline, tmp_path, **settings) -> ServingModel:
    model = ServingModel("m", 1, "champion", pipeline, explain_rows=False)
    assert model.trees.startswith("LightGBM booster")
    model.compile_trees(TreeCompiler(CompiledTreesSettings(cache_dir=str(tmp_path), **settings), threads=2))
    return model


@pytest.fixture(scope="module")
def compiled(fitted_models, tmp_path_factory):
    cache = tmp_path_factory.mktemp("trees")
    model = compiled_model(fitted_models[1], cache, tables=False)
    assert settled(model).startswith("compiled trees ("), model.trees
    return model, cache


def test_compiled_trees_answer_as_the_pipeline_on_every_row(compiled, fitted_models, raw_housing):
    compiled, _ = compiled
    X = raw_housing.loc[:, list(FEATURES)]
    expected = fitted_models[1].predict(X)
    rows = np.array([compiled.predict_row(row) for row in X.itertuples(index=False)])
    np.testing.assert_allclose(rows, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(compiled.predict(X.to_numpy(), 2), expected, rtol=0, atol=1e-9)


def test_a_cached_library_is_used_without_building(compiled, fitted_models, monkeypatch):
    compiled, cache = compiled

    def no_build(*_args):
        raise AssertionError("built again although the cache holds the library")

    monkeypatch.setattr(TreeCompiler, "_build", no_build)
    again = compiled_model(fitted_models[1], cache, tables=False)
    assert settled(again) == compiled.trees


def test_without_a_compiler_the_booster_serves_and_says_why(fitted_models, tmp_path, raw_housing):
    model = compiled_model(fitted_models[1], tmp_path, compiler="no-such-cc")
    status = settled(model)
    assert (
        status.startswith("LightGBM booster (60 trees); tree tables unavailable: ") and "no-such-cc" in status
    )
    assert "; compiled trees unavailable: " in status
    row = tuple(raw_housing.loc[0, list(FEATURES)])
    assert model.predict_row(row) == pytest.approx(fitted_models[1].predict(np.array([row]))[0], abs=1e-9)


def test_a_library_that_answers_differently_is_refused(fitted_models, tmp_path):
    """tl2cgen's own code (with its missing-value tests) misreads values whose low 32 bits
    are all ones; placed where the cache expects this model's library, the check refuses it."""
    import tl2cgen  # noqa: PLC0415
    import treelite  # noqa: PLC0415

    from housing.serving import tree_build  # noqa: PLC0415

    booster = fitted_models[1][-1].booster_
    source = tmp_path / "c"
    tl2cgen.generate_c_code(treelite.frontend.from_lightgbm(booster), source, params={"quantize": 1})
    with (source / "main.c").open("a") as main:
        main.write(tree_build._PREDICT_BATCH)  # the batch entry point, the tests left in
    built = tl2cgen.create_shared("gcc", source)
    shutil.move(built, tmp_path / f"trees-{cache_key(model_text(booster))}.so")
    model = compiled_model(fitted_models[1], tmp_path, tables=False)
    status = settled(model)
    assert "compiled trees unavailable" in status and "differs from the booster" in status


def test_building_by_hand_fails_in_one_line(tmp_path):
    model = tmp_path / "model.txt"
    model.write_text("not a LightGBM model")
    done = subprocess.run(
        [sys.executable, "-m", "housing.serving.tree_build", str(model), str(tmp_path / "x.so")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("building x.so failed:") and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.so").exists()


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"jobs": 0}, "'compiled_trees.jobs'"),
        ({"jobs": "2"}, "'compiled_trees.jobs'"),
        ({"enabled": "yes"}, "'compiled_trees.enabled'"),
        ({"compiler": ""}, "'compiled_trees.compiler'"),
        ({"tables": "yes"}, "'compiled_trees.tables'"),
        ({"cache": "x"}, "unknown key 'compiled_trees.cache'"),
    ],
)
def test_bad_settings_are_refused_by_name(block, message):
    with pytest.raises(SettingsError, match=message):
        ServingConfig.from_conf(
            {"prediction_log": {"uri": "sqlite://"}, "compiled_trees": block}, "serving.yml"
        )


def test_a_reload_during_a_build_frees_the_replaced_model(fitted_models, tmp_path, monkeypatch):
    """A burst of reloads never queues models behind a build: the pending one is
    replaced, and the callbacks hold models weakly, so a replaced model is freed at once."""
    import copy  # noqa: PLC0415
    import gc  # noqa: PLC0415
    import threading  # noqa: PLC0415
    import weakref  # noqa: PLC0415

    release = threading.Event()
    library = TreeCompiler._library

    def slow_library(self, *args):
        release.wait(60)
        return library(self, *args)

    monkeypatch.setattr(TreeCompiler, "_library", slow_library)
    compiler = TreeCompiler(CompiledTreesSettings(cache_dir=str(tmp_path), tables=False), threads=1)
    models = [
        ServingModel("m", v, "champion", copy.deepcopy(fitted_models[1]), explain_rows=False)
        for v in (1, 2, 3)
    ]
    for model in models:
        model.compile_trees(compiler)  # 1 is being built; 2 waits, then 3 replaces it
    replaced = [weakref.ref(m) for m in models[:2]]
    del models[:2]
    gc.collect()
    assert [ref() for ref in replaced] == [None, None]
    release.set()
    assert compiler.wait(120)
    assert models[0].trees.startswith("compiled trees ("), models[0].trees
