"""The explainability pipeline on an in-memory catalog, and how the project wires it."""

from pathlib import Path

import numpy as np
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import CSVDataset
from matplotlib.figure import Figure

from housing.pipeline_registry import register_pipelines
from housing.pipelines.explainability import create_pipeline
from tests.conftest import PROJECT_ROOT

REPORTS = (
    "shap_summary_plot",
    "shap_importance_plot",
    "shap_dependence_plot",
    "shap_importance_features",
    "shap_importance_groups",
)


def test_pipeline_explains_the_best_candidate(lightgbm_model, rows, light_params, tmp_path):
    _, held_out = rows
    catalog = DataCatalog(
        datasets={
            "model_input_test": MemoryDataset(held_out),
            "best_candidate": MemoryDataset(
                {"candidate": "lightgbm", "model": lightgbm_model, "metrics": {}},
                copy_mode="assign",
            ),
            # files, as in the real catalog: the plot nodes read the tables back
            "shap_importance_features": CSVDataset(filepath=str(tmp_path / "features.csv")),
            "shap_importance_groups": CSVDataset(filepath=str(tmp_path / "groups.csv")),
        }
    )
    settings = {**light_params["explainability"], "sample_size": 120}
    for key, value in settings.items():
        catalog[f"params:explainability.{key}"] = MemoryDataset(value)

    out = SequentialRunner().run(create_pipeline(), catalog)

    for name in ("shap_summary_plot", "shap_importance_plot", "shap_dependence_plot"):
        assert isinstance(out[name].load(), Figure), name
    features = catalog["shap_importance_features"].load()
    groups = catalog["shap_importance_groups"].load()
    assert len(features) == 33
    assert features["mean_abs_shap"].is_monotonic_decreasing
    assert "Location" in set(groups["group"])
    # a group's mean |SHAP| can only lose to cancellation, never gain
    assert groups["mean_abs_shap"].sum() <= features["mean_abs_shap"].sum() + 1e-9
    assert np.isclose(groups["share"].sum(), 1.0)
    dependence = out["shap_dependence_plot"].load()
    panels = [ax for ax in dependence.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == settings["top_n_dependence"]


def test_explainability_runs_inside_training_only():
    pipelines = register_pipelines()
    training = pipelines["training"]
    explainability = create_pipeline()
    assert {n.name for n in explainability.nodes} <= {n.name for n in training.nodes}
    # best_candidate is in memory: a pipeline run on its own could never load it
    assert "explainability" not in pipelines
    assert "best_candidate" in explainability.inputs()
    assert all("explainability" in n.tags for n in explainability.nodes)


def test_reports_go_to_files_and_to_mlflow_under_shap():
    catalog = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())
    outputs = create_pipeline().all_outputs()
    for name in REPORTS:
        assert name in outputs, name
        entry = catalog[name]
        assert entry["type"] == "kedro_mlflow.io.artifacts.MlflowArtifactDataset"
        assert entry["artifact_path"] == "shap"
        path = Path(entry["dataset"]["filepath"])
        assert path.parent == Path("data/08_reporting/shap"), name
    for name in ("shap_summary_plot", "shap_importance_plot", "shap_dependence_plot"):
        assert catalog[name]["dataset"]["type"] == "matplotlib.MatplotlibDataset"
        assert catalog[name]["dataset"]["filepath"].endswith(".png")
