import numpy as np
import pandas as pd
import pytest

from housing.pipelines.data_processing.features import (
    FEATURES,
    TARGET,
    GeoFeatures,
    as_feature_matrix,
)


@pytest.fixture
def data(raw_housing):
    sample = raw_housing.sample(2_000, random_state=0)
    return sample.loc[:, list(FEATURES)], sample[TARGET]


@pytest.fixture
def geo(params):
    return GeoFeatures(**params["feature_engineering"])


def test_output_matches_feature_names(geo, data):
    X, y = data
    out = geo.fit_transform(X, y)
    names = geo.get_feature_names_out()
    assert out.shape == (len(X), len(names))
    assert len(set(names)) == len(names)
    assert np.isfinite(out).all()
    assert list(names[:8]) == list(FEATURES)


def test_dataframe_column_order_does_not_matter(geo, data):
    X, y = data
    geo.fit(X, y)
    shuffled = X[list(reversed(FEATURES))]
    np.testing.assert_array_equal(geo.transform(shuffled), geo.transform(X.to_numpy()))


def test_fit_transform_is_leave_one_out_but_transform_is_not(geo, data):
    X, y = data
    loo = geo.fit_transform(X, y)
    plain = geo.transform(X)
    mean = list(geo.get_feature_names_out()).index("NeighbourPriceMean")
    # with its own price among its neighbours, a training row looks like itself
    assert np.corrcoef(plain[:, mean], y)[0, 1] > np.corrcoef(loo[:, mean], y)[0, 1]
    # only the neighbour block differs
    np.testing.assert_array_equal(loo[:, :mean], plain[:, :mean])


def test_leave_one_out_excludes_the_row_itself():
    X = pd.DataFrame(
        [[3.0, 20, 5, 1, 1000, 3, 34.0 + i * 0.01, -118.0] for i in range(5)],
        columns=FEATURES,
    )
    y = pd.Series([1.0, 2.0, 3.0, 4.0, 100.0])
    geo = GeoFeatures(rotation_degrees=(), n_neighbors=4)
    loo = geo.fit_transform(X, y)
    mean = list(geo.get_feature_names_out()).index("NeighbourPriceMean")
    # row 4 (price 100) is averaged over the other four only
    assert loo[4, mean] == pytest.approx(2.5)


def test_single_row_transform(geo, data):
    X, y = data
    geo.fit(X, y)
    one = geo.transform(X.iloc[[0]])
    assert one.shape == (1, len(geo.get_feature_names_out()))


def test_neighbours_need_a_target(geo, data):
    with pytest.raises(ValueError, match="needs the target y"):
        geo.fit(data[0])


def test_missing_feature_is_named():
    with pytest.raises(ValueError, match=r"missing feature column\(s\) \['Latitude'\]"):
        as_feature_matrix(pd.DataFrame({c: [1.0] for c in FEATURES if c != "Latitude"}))


def test_wrong_array_width_is_explained():
    with pytest.raises(ValueError, match=r"expected a 2-D array with 8 columns"):
        as_feature_matrix(np.zeros((2, 7)))


@pytest.mark.parametrize(
    "settings",
    [
        {},  # the configured transformer
        {"cities": None, "n_clusters": 0, "n_neighbors": 1, "rotation_degrees": ()},
        {"n_neighbors": 7},  # an odd k: a different median
    ],
    ids=["configured", "bare", "odd-k"],
)
def test_transform_row_equals_transform_on_every_row(params, raw_housing, settings):
    """The API's one-row path gives the very same numbers as the batch path."""
    X = raw_housing.loc[:, list(FEATURES)]
    geo = GeoFeatures(**(params["feature_engineering"] | settings)).fit(
        X.iloc[:5_000], raw_housing[TARGET].iloc[:5_000]
    )
    rows = np.array([geo.transform_row(row) for row in X.itertuples(index=False)])
    np.testing.assert_array_equal(rows, geo.transform(X))


def test_row_constants_are_not_pickled(geo, data):
    import pickle  # noqa: PLC0415

    X, y = data
    geo.fit(X, y)
    geo.transform_row(tuple(X.iloc[0]))
    copy = pickle.loads(pickle.dumps(geo))
    assert not hasattr(copy, "_row_constants")
    assert copy.transform_row(tuple(X.iloc[1])) == geo.transform_row(tuple(X.iloc[1]))
