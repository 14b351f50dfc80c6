"""The API process carries no plotting code: matplotlib and shap cost start-up time and
memory, and an API never draws. Explaining a LightGBM champion needs neither."""

import subprocess
import sys

import pytest

from tests.conftest import clean_env

PROBE = """
import sys
import numpy as np, pandas as pd
import housing.serving.app, housing.serving.model
from housing.contract import FEATURES
from housing.explainer import Explainer
from lightgbm import LGBMRegressor
from sklearn.pipeline import Pipeline
from housing.pipelines.data_processing.features import GeoFeatures

rng = np.random.default_rng(0)
X = pd.DataFrame(rng.uniform(1, 5, (300, 8)), columns=list(FEATURES))
X["Latitude"], X["Longitude"] = rng.uniform(33, 41, 300), rng.uniform(-123, -115, 300)
geo = GeoFeatures(rotation_degrees=(45,), n_clusters=3, n_neighbors=5)
model = Pipeline([("features", geo), ("model", LGBMRegressor(n_estimators=20, verbose=-1, n_jobs=1))])
model.fit(X, X["MedInc"] * 2)
Explainer(model).explain(X.head(1))
print(sorted({m.split(".")[0] for m in sys.modules} & {"matplotlib", "shap"}))
"""


def test_the_api_and_a_lightgbm_explanation_import_no_plotting_library():
    run = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "[]"


SERVED = """
import sys
from housing.serving.app import create_app_from_project
app = create_app_from_project()
assert app.state.serving.load() is not None, app.state.serving.not_ready
print(sorted({m.split(".")[0] for m in sys.modules} & {"matplotlib", "shap", "evidently"}))
"""


@pytest.mark.e2e
def test_the_api_of_a_trained_project_imports_no_plotting_library(trained_project):
    """The real start: Kedro's session (its hooks), the catalog, the registered champion."""
    env = {**clean_env(), "HOUSING_PROJECT_PATH": str(trained_project), "KEDRO_ENV": "test"}
    run = subprocess.run(
        [sys.executable, "-c", SERVED], capture_output=True, text=True, timeout=300, check=False, env=env
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "[]"
