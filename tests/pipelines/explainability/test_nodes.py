import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.preprocessing import StandardScaler

from housing.explainer import (
    ADDITIVITY_RTOL,
    Explainer,
    additivity_error,
    explain,
    feature_group,
    feature_groups,
    group_contributions,
)
from housing.pipelines.data_processing.features import FEATURES, TARGET
from housing.pipelines.explainability.nodes import (
    compute_shap_values,
    plot_shap_dependence,
    plot_shap_importance,
    plot_shap_summary,
    sample_rows,
    shap_importance,
)
from housing.pipelines.modelling.estimators import build_model

RAW_ALONE = ("MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup")


def _assert_additive(model, X, base, contributions):
    predictions = model.predict(X)
    reconstructed = base + contributions.sum(axis=1).to_numpy()
    np.testing.assert_allclose(reconstructed, predictions, rtol=1e-6, atol=1e-9)
    assert additivity_error(base, contributions, predictions) < ADDITIVITY_RTOL


@pytest.fixture(scope="module")
def lightgbm_shap(lightgbm_model, explained_rows):
    return compute_shap_values(
        {"candidate": "lightgbm", "model": lightgbm_model, "metrics": {}},
        explained_rows,
    )


# -- groups ----------------------------------------------------------------------------
def test_every_engineered_feature_has_a_human_group(lightgbm_model):
    names = list(lightgbm_model[:-1].get_feature_names_out())
    assert len(names) == 33
    groups = feature_groups(names)
    assert set(groups) == set(names)
    for raw in RAW_ALONE:
        assert groups[raw] == raw
    for geo in (
        "Latitude",
        "Longitude",
        "RotX15",
        "RotY75",
        "KmToSanFrancisco",
        "KmToNearestCity",
        "LocationCluster",
        "KmToClusterCentre",
        "NeighbourPriceMean",
        "NeighbourKmMax",
    ):
        assert groups[geo] == "Location"
    assert groups["BedrmsPerRoom"] == groups["RoomsPerPerson"] == "Rooms & bedrooms"
    assert feature_group("SomethingNew") == "SomethingNew"


def test_group_sums_equal_feature_sums(lightgbm_shap):
    contributions = lightgbm_shap["contributions"]
    grouped = group_contributions(contributions)
    assert list(grouped.index) == list(contributions.index)
    np.testing.assert_allclose(grouped.sum(axis=1), contributions.sum(axis=1), rtol=1e-12)
    location = [c for c in contributions if feature_group(c) == "Location"]
    np.testing.assert_allclose(grouped["Location"], contributions[location].sum(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(grouped["MedInc"], contributions["MedInc"])


# -- the explainer ---------------------------------------------------------------------
def test_lightgbm_explanations_add_up_to_the_prediction(lightgbm_model, explained_rows):
    explainer = Explainer(lightgbm_model)  # trees need no background
    assert explainer.kind == "lightgbm"  # LightGBM's own TreeSHAP: no shap in the API
    base, contributions = explainer.explain(explained_rows)
    # the very values shap's TreeExplainer computes (path-dependent TreeSHAP)
    import shap  # noqa: PLC0415

    reference = shap.TreeExplainer(lightgbm_model[-1])
    engineered = lightgbm_model[:-1].transform(explained_rows)
    np.testing.assert_allclose(
        contributions.to_numpy(), reference.shap_values(engineered), rtol=1e-6, atol=1e-9
    )
    assert base == pytest.approx(float(np.ravel(reference.expected_value)[0]), rel=1e-9)
    assert isinstance(base, float)
    assert list(contributions.columns) == list(lightgbm_model[:-1].get_feature_names_out())
    assert list(contributions.index) == list(explained_rows.index)
    _assert_additive(lightgbm_model, explained_rows, base, contributions)

    # what the API does: one row at a time with the same explainer, same answer
    one = explained_rows.iloc[[3]]
    base_one, row = explainer.explain(one)
    assert base_one == pytest.approx(base, rel=1e-12)
    np.testing.assert_allclose(row.to_numpy()[0], contributions.iloc[3], rtol=1e-9)
    _assert_additive(lightgbm_model, one, base_one, row)


def test_scaled_ridge_explanations_add_up_to_the_prediction(ridge_model, explained_rows, rows):
    assert isinstance(ridge_model.named_steps["scale"], StandardScaler)
    train, _ = rows
    explainer = Explainer(ridge_model, background=train[list(FEATURES)])
    assert explainer.kind == "linear"
    base, contributions = explainer.explain(explained_rows)
    _assert_additive(ridge_model, explained_rows, base, contributions)
    # plots get the features in their own units, not standard deviations
    values = explainer.feature_values(explained_rows)
    np.testing.assert_allclose(values["MedInc"], explained_rows["MedInc"])


@pytest.mark.parametrize(
    ("candidate", "tuned"),
    [
        ("random_forest", {"n_estimators": 20, "max_depth": 6, "n_jobs": 1}),
        ("gradient_boosting", {"n_estimators": 30, "max_depth": 3}),
    ],
)
def test_the_other_tree_candidates_add_up_too(candidate, tuned, params, rows, explained_rows):
    train, _ = rows
    model = build_model(params[candidate]["candidate"], tuned, params["feature_engineering"]).fit(
        train[list(FEATURES)], train[TARGET]
    )
    explainer = Explainer(model)
    assert explainer.kind == "tree"
    X = explained_rows.head(50)
    base, contributions = explainer.explain(X)
    _assert_additive(model, X, base, contributions)


def test_linear_models_need_a_background(ridge_model):
    with pytest.raises(ValueError, match="background"):
        Explainer(ridge_model)


def test_other_models_fall_back_to_a_permutation_estimate(rows, params):
    train, held_out = rows
    knn = build_model(
        {"estimator": "sklearn.neighbors.KNeighborsRegressor", "scale": True},
        {"n_neighbors": 10},
        {"rotation_degrees": [45]},
    ).fit(train[list(FEATURES)].head(300), train[TARGET].head(300))
    X = held_out[list(FEATURES)].head(2)
    base, contributions = explain(knn, X, background=train.head(20))
    _assert_additive(knn, X, base, contributions)


def test_the_explainer_wants_a_pipeline(lightgbm_model):
    with pytest.raises(TypeError, match="Pipeline"):
        Explainer(lightgbm_model[-1])


# -- nodes -----------------------------------------------------------------------------
def test_sample_is_seeded_capped_and_raw(raw_housing):
    first = sample_rows(raw_housing, 50, seed=1)
    assert list(first.columns) == list(FEATURES)
    assert first.index.equals(sample_rows(raw_housing, 50, seed=1).index)
    assert not first.index.equals(sample_rows(raw_housing, 50, seed=2).index)
    assert len(sample_rows(raw_housing.head(10), 50, seed=1)) == 10


def test_compute_shap_values_reports_its_additivity(lightgbm_shap, explained_rows):
    assert lightgbm_shap["candidate"] == "lightgbm"
    assert lightgbm_shap["explainer"] == "lightgbm"
    assert lightgbm_shap["additivity_error"] < ADDITIVITY_RTOL
    assert lightgbm_shap["contributions"].shape == (len(explained_rows), 33)
    assert lightgbm_shap["feature_values"].columns.equals(lightgbm_shap["contributions"].columns)


def test_importance_tables_are_sorted_and_complete(lightgbm_shap):
    features, groups = shap_importance(lightgbm_shap)
    contributions = lightgbm_shap["contributions"]
    assert list(features.columns[:2]) == ["feature", "group"]
    assert sorted(features["feature"]) == sorted(contributions.columns)
    assert features["mean_abs_shap"].is_monotonic_decreasing
    np.testing.assert_allclose(
        features.set_index("feature")["mean_abs_shap"],
        contributions.abs().mean()[features["feature"]],
    )
    assert features["share"].sum() == pytest.approx(1.0)

    assert set(groups["group"]) == {
        *RAW_ALONE,
        "Location",
        "Rooms & bedrooms",
        "Households",
    }
    assert groups["mean_abs_shap"].is_monotonic_decreasing
    assert groups["n_features"].sum() == 33
    assert groups.set_index("group").loc["Location", "n_features"] == 24
    # |sum| <= sum of |.|: a group never weighs more than its features added up
    per_feature_sum = features.groupby("group")["mean_abs_shap"].sum()
    for row in groups.itertuples():
        assert row.mean_abs_shap <= per_feature_sum[row.group] + 1e-12
        assert set(row.features.split()) == set(features.loc[features["group"] == row.group, "feature"])


def test_figures_are_labelled_and_nothing_leaks(lightgbm_shap):
    open_before = plt.get_fignums()
    features, groups = shap_importance(lightgbm_shap)
    figures = {
        "summary": plot_shap_summary(lightgbm_shap, max_display=10),
        "importance": plot_shap_importance(lightgbm_shap, features, groups, 10),
        "dependence": plot_shap_dependence(lightgbm_shap, features, top_n=3),
    }
    assert plt.get_fignums() == open_before
    for name, fig in figures.items():
        assert isinstance(fig, Figure), name
        plots = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        assert plots, name
        for ax in plots:
            assert ax.get_xlabel() and ax.get_ylabel(), (name, ax.get_title())
        assert any("$100,000s" in ax.get_xlabel() + ax.get_ylabel() for ax in plots)
        titles = [ax.get_title() for ax in plots]
        suptitle = fig.get_suptitle()
        assert any("lightgbm" in t for t in [*titles, suptitle]), name

    dependence = [ax for ax in figures["dependence"].axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in dependence] == list(features["feature"][:3])
    summary_labels = [t.get_text() for t in figures["summary"].axes[0].get_yticklabels()]
    assert features["feature"].iloc[0] in summary_labels
