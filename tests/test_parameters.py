"""Bad parameters stop a run before any work, with the file, the key and what is allowed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from housing.parameters import ParameterError, check_parameters
from housing.pipelines.modelling.pipeline import CANDIDATES
from tests.conftest import PROJECT_ROOT, clean_env, kedro_run

CONF = [PROJECT_ROOT / "conf" / "base", PROJECT_ROOT / "conf" / "test"]


def test_the_committed_parameters_pass(params, light_params):
    check_parameters(params, CONF[:1], CANDIDATES)
    check_parameters(light_params, CONF, CANDIDATES)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda p: p["lightgbm"]["candidate"].update(n_trial=3),
            "conf/test/parameters_modelling.yml: unknown key 'lightgbm.candidate.n_trial'; allowed: "
            "['early_stopping', 'enqueue', 'estimator', 'fixed', 'n_trials'",
        ),
        (
            lambda p: p["random_forest"]["candidate"].update(n_trials=-2),
            "random_forest.candidate.n_trials: Input should be greater than 0 (got -2)",
        ),
        (
            lambda p: p["tuning"].update(cv_folds=1),
            "tuning.cv_folds: Input should be greater than or equal to 2 (got 1)",
        ),
        (
            lambda p: p["gradient_boosting"]["candidate"].update(estimator="sklearn.ensemble.Nope"),
            "cannot import estimator class 'sklearn.ensemble.Nope'",
        ),
        (
            lambda p: p["linear_regression"]["candidate"]["search_space"]["alpha"].update(low=5.0, high=1.0),
            "linear_regression.candidate.search_space.alpha: needs 'low' < 'high' (got low=5.0, high=1.0)",
        ),
        (
            lambda p: p["lightgbm"]["candidate"]["enqueue"].append({"max_bin": 63}),
            "enqueue[0] sets ['max_bin'], which are not in search_space",
        ),
        (
            lambda p: p["validation"]["ranges"].pop("Latitude"),
            "validation.ranges: needs a [low, high] range for every column; missing ['Latitude']",
        ),
        (
            lambda p: p["raw_file"].update(sha256="not-a-checksum"),
            "conf/base/parameters_data_processing.yml: raw_file.sha256: String should match pattern",
        ),
    ],
)
def test_each_kind_of_mistake_is_named(light_params, change, expected):
    broken = copy.deepcopy(light_params)
    change(broken)
    with pytest.raises(ParameterError) as err:
        check_parameters(broken, CONF, CANDIDATES)
    assert expected in str(err.value)


def test_every_problem_is_reported_at_once(light_params):
    broken = copy.deepcopy(light_params)
    broken["lightgbm"]["candidate"]["n_trials"] = 0
    broken["tuning"]["seeds"] = 1
    with pytest.raises(ParameterError, match=r"^2 problem\(s\) in the parameters"):
        check_parameters(broken, CONF, CANDIDATES)


def test_an_unknown_candidate_block_is_named_with_the_known_ones(tmp_path, light_params):
    base = tmp_path / "base"
    base.mkdir()
    text = (PROJECT_ROOT / "conf" / "base" / "parameters_modelling.yml").read_text()
    (base / "parameters_modelling.yml").write_text(text + "\nxgboost:\n  candidate: {}\n")
    with pytest.raises(ParameterError) as err:
        check_parameters(light_params, [base], CANDIDATES)
    assert f"{base / 'parameters_modelling.yml'}: unknown candidate 'xgboost'" in str(err.value)
    assert str(list(CANDIDATES)) in str(err.value)


@pytest.mark.e2e
def test_a_run_with_bad_parameters_stops_before_any_node(project_copy):
    path = project_copy / "conf" / "test" / "parameters_modelling.yml"
    light = yaml.safe_load(path.read_text())
    light["lightgbm"]["candidate"]["n_trials"] = -1
    path.write_text(yaml.safe_dump(light))
    run = kedro_run(project_copy, clean_env(), "--pipelines", "training")
    output = " ".join((run.stdout + run.stderr).split())  # rich wraps long lines
    assert run.returncode != 0
    assert "ParameterError: 1 problem(s) in the parameters" in output
    assert (
        "parameters_modelling.yml: lightgbm.candidate.n_trials: Input should be greater than 0 (got -1)"
        in output
    )
    assert "Completed node" not in output and "Traceback" not in output
    assert not Path(project_copy / "data" / "02_intermediate" / "raw_data_version.json").exists()
