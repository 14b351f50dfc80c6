"""The modelling pipeline on a small slice, up to the choice of the best candidate."""

import numpy as np
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import CSVDataset
from matplotlib.figure import Figure
from sklearn.pipeline import Pipeline

from housing.pipelines.data_processing.features import FEATURES
from housing.pipelines.modelling import create_pipeline
from housing.pipelines.modelling.pipeline import CANDIDATES


def test_candidates_are_tuned_compared_and_the_best_selected(raw_housing, light_params, tmp_path):
    data = raw_housing.sample(1_500, random_state=1)
    catalog = DataCatalog(
        datasets={
            "model_input_train": MemoryDataset(data.iloc[:1_200]),
            "model_input_test": MemoryDataset(data.iloc[1_200:]),
            # persisted, so the runner does not release it before the test reads it
            "model_comparison": CSVDataset(filepath=str(tmp_path / "comparison.csv")),
        }
    )
    for key, value in light_params.items():
        catalog[f"params:{key}"] = MemoryDataset(value)
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                catalog[f"params:{key}.{sub}"] = MemoryDataset(subvalue)
    pipeline = create_pipeline().to_outputs(
        "best_candidate",
        "model_comparison_markdown",
        "model_comparison_chart",
        "candidate_metrics",
    )
    out = SequentialRunner().run(pipeline, catalog)

    comparison = catalog["model_comparison"].load()
    assert sorted(comparison["candidate"]) == sorted(CANDIDATES)
    assert comparison["cv_rmse"].is_monotonic_increasing  # chosen on CV, never on test
    best = out["best_candidate"].load()
    assert best["candidate"] == comparison.loc[0, "candidate"]
    assert isinstance(best["model"], Pipeline)
    predictions = best["model"].predict(data.iloc[1_200:][list(FEATURES)])
    assert np.isfinite(predictions).all()
    assert "| lightgbm |" in out["model_comparison_markdown"].load()
    assert isinstance(out["model_comparison_chart"].load(), Figure)
    metrics = out["candidate_metrics"].load()
    assert metrics["best.test_rmse"]["value"] == comparison.loc[0, "test_rmse"]
