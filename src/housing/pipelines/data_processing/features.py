"""Feature engineering that travels inside the registered model.

The model is registered as one scikit-learn ``Pipeline(GeoFeatures, estimator)`` so that
every client (the API, notebooks, ``mlflow models serve``) sends the raw eight features
and gets the same answer. Everything here is numpy on purpose: the transform runs once
per HTTP request, and a pandas version of it costs ~100x more for one row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans

from housing.contract import FEATURES, TARGET

__all__ = ["FEATURES", "TARGET", "GeoFeatures", "as_feature_matrix", "row_fingerprints"]


_COL = {name: i for i, name in enumerate(FEATURES)}
_KM_PER_DEG_LAT = 111.0


def as_feature_matrix(X) -> np.ndarray:
    """Return the eight raw features as a float64 matrix in contract order.

    A DataFrame is reordered by name (so column order never matters to a caller); a bare
    array must already be in ``FEATURES`` order.
    """
    if isinstance(X, pd.DataFrame):
        missing = [c for c in FEATURES if c not in X.columns]
        if missing:
            raise ValueError(f"input is missing feature column(s) {missing}")
        return X.loc[:, list(FEATURES)].to_numpy(dtype=np.float64)
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != len(FEATURES):
        raise ValueError(
            f"expected a 2-D array with {len(FEATURES)} columns {list(FEATURES)}, got shape {arr.shape}"
        )
    return arr


def row_fingerprints(frame: pd.DataFrame) -> np.ndarray:
    """A stable 64-bit id per row from its eight feature values (not its index).

    The same house gets the same id in the raw file, the prediction log and a model's
    manifest of training rows, on any machine: that is how a gate knows which test rows
    a model has already seen, even when they came back as production traffic.
    """
    values = frame.loc[:, list(FEATURES)].astype(np.float64).reset_index(drop=True)
    return pd.util.hash_pandas_object(values, index=False).to_numpy(dtype=np.uint64)


def _planar_km(lat: np.ndarray, lon: np.ndarray, ref_lat: float) -> np.ndarray:
    """Project coordinates onto a local plane in km, good enough within one state."""
    return np.column_stack((lat * _KM_PER_DEG_LAT, lon * _KM_PER_DEG_LAT * np.cos(np.radians(ref_lat))))


@dataclass(frozen=True)
class _RowConstants:
    rotations: tuple[tuple[float, float], ...]  # (cos, sin) per angle
    lon_scale: float  # km per degree of longitude / km per degree of latitude, at ref_lat_
    cities: tuple[tuple[float, float], ...]  # planar km
    centres: tuple[tuple[float, float], ...]  # location clusters, planar km
    k: int | list[int]  # cKDTree.query's k: always arrays back


class GeoFeatures(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Raw census features -> ratios, geography and neighbourhood prices.

    Prices in California are mostly about *where*: besides household ratios this adds
    rotated coordinates (so axis-aligned tree splits can cut diagonal coastlines),
    distances to the big cities, a location cluster, and the mean price of the
    ``n_neighbors`` nearest training districts. The neighbour price is computed
    leave-one-out during ``fit_transform`` (as scikit-learn's ``TargetEncoder``
    cross-fits) so a training row never sees its own target.

    Always returns numpy (``auto_wrap_output_keys=None``: no ``set_output`` wrapper on the
    per-request path).
    """

    def __init__(
        self,
        cities: dict[str, list[float]] | None = None,
        rotation_degrees: tuple[float, ...] = (15.0, 30.0, 45.0, 60.0, 75.0),
        n_clusters: int = 0,
        n_neighbors: int = 0,
        random_state: int = 42,
    ):
        self.cities = cities
        self.rotation_degrees = rotation_degrees
        self.n_clusters = n_clusters
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    # -- fitting -----------------------------------------------------------------------
    def fit(self, X, y=None):
        self._fit(as_feature_matrix(X), y)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        arr = as_feature_matrix(X)
        self._fit(arr, y)
        out = self._base_features(arr)
        if self.n_neighbors:
            out = np.column_stack((out, self._neighbour_features(arr, leave_one_out=True)))
        return out

    def _fit(self, arr: np.ndarray, y) -> None:
        if self.n_neighbors and y is None:
            raise ValueError("GeoFeatures with n_neighbors > 0 needs the target y to fit")
        self.n_features_in_ = len(FEATURES)
        self.ref_lat_ = float(np.mean(arr[:, _COL["Latitude"]]))
        cities = self.cities or {}
        self.city_names_ = tuple(cities)
        self.city_xy_ = (
            _planar_km(
                np.array([c[0] for c in cities.values()]),
                np.array([c[1] for c in cities.values()]),
                self.ref_lat_,
            )
            if cities
            else np.empty((0, 2))
        )
        xy = self._xy(arr)
        if self.n_clusters:
            km = KMeans(self.n_clusters, n_init=4, random_state=self.random_state)
            km.fit(xy)
            self.cluster_centres_ = km.cluster_centers_
            self._cluster_tree = cKDTree(self.cluster_centres_)
        if self.n_neighbors:
            self._tree = cKDTree(xy)
            self._y = np.asarray(y, dtype=np.float64)
        self.feature_names_out_ = self._names()

    # -- transforming ------------------------------------------------------------------
    def transform(self, X) -> np.ndarray:
        arr = as_feature_matrix(X)
        out = self._base_features(arr)
        if self.n_neighbors:
            out = np.column_stack((out, self._neighbour_features(arr, leave_one_out=False)))
        return out

    def transform_row(self, row: Sequence[float]) -> list[float]:
        """``transform`` of one raw row (``FEATURES`` order), for the API's hot path.

        numpy costs about a microsecond a call whatever the size, and one row through
        ``transform`` makes some forty calls; here the arithmetic is plain Python floats (the
        same IEEE operations in the same order as ``transform``, so the same values) and only
        the neighbour query is numpy. A test holds the two equal on every row of the data.
        Rooms and occupancy must be positive (the API's rules): a zero raises
        ``ZeroDivisionError`` where ``transform`` would give ``inf``.
        """
        c = getattr(self, "_row_constants", None) or self._prepare_rows()
        inc, age, rooms, bedrooms, population, occupancy, lat, lon = row
        out = [inc, age, rooms, bedrooms, population, occupancy, lat, lon]
        out += (bedrooms / rooms, rooms / occupancy, float(np.log1p(population / occupancy)))
        for cos, sin in c.rotations:
            out += (lon * cos + lat * sin, lat * cos - lon * sin)
        x, y = lat * _KM_PER_DEG_LAT, lon * _KM_PER_DEG_LAT * c.lon_scale
        if c.cities:
            dist = [math.sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy)) for cx, cy in c.cities]
            out += dist
            out.append(min(dist))
        if c.centres:
            squares = [(x - cx) * (x - cx) + (y - cy) * (y - cy) for cx, cy in c.centres]
            label = min(range(len(squares)), key=squares.__getitem__)
            out += (float(label), math.sqrt(squares[label]))
        if self.n_neighbors:
            dist, idx = self._tree.query((x, y), k=c.k)
            prices = self._y[idx]
            # numpy's mean and std without their Python wrappers: the same reductions
            mean = np.add.reduce(prices) / len(prices)
            deviation = prices - mean
            std = math.sqrt(np.add.reduce(deviation * deviation) / len(prices))
            ordered = np.sort(prices).tolist()
            half = len(ordered) // 2
            median = ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2
            out += (float(mean), median, std, float(dist[-1]))
        return out

    def _prepare_rows(self) -> _RowConstants:
        """Everything ``transform_row`` needs that does not depend on the row, computed
        once with the same numpy calls ``transform`` makes (so the same bits)."""
        theta = np.radians(np.asarray(self.rotation_degrees, dtype=np.float64))
        constants = _RowConstants(
            rotations=tuple(zip(np.cos(theta).tolist(), np.sin(theta).tolist(), strict=True)),
            lon_scale=float(np.cos(np.radians(self.ref_lat_))),
            cities=tuple(map(tuple, self.city_xy_.tolist())) if len(self.city_names_) else (),
            centres=tuple(map(tuple, self.cluster_centres_.tolist())) if self.n_clusters else (),
            k=self.n_neighbors if self.n_neighbors > 1 else [1],  # k=1 would return scalars
        )
        self._row_constants = constants
        return constants

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_row_constants", None)  # derived; never pickled with the model
        return state

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(self.feature_names_out_, dtype=object)

    def _xy(self, arr: np.ndarray) -> np.ndarray:
        return _planar_km(arr[:, _COL["Latitude"]], arr[:, _COL["Longitude"]], self.ref_lat_)

    def _base_features(self, arr: np.ndarray) -> np.ndarray:
        c = _COL
        rooms, bedrooms = arr[:, c["AveRooms"]], arr[:, c["AveBedrms"]]
        occupancy, population = arr[:, c["AveOccup"]], arr[:, c["Population"]]
        lat, lon = arr[:, c["Latitude"]], arr[:, c["Longitude"]]
        with np.errstate(divide="ignore", invalid="ignore"):
            cols = [
                arr,
                (bedrooms / rooms)[:, None],
                (rooms / occupancy)[:, None],
                np.log1p(population / occupancy)[:, None],  # households
            ]
        if len(self.rotation_degrees):
            # all angles at once (one request pays numpy's per-call cost once, not 20 times);
            # columns interleave RotX, RotY per angle, the order fitted models expect
            theta = np.radians(np.asarray(self.rotation_degrees, dtype=np.float64))
            cos, sin = np.cos(theta), np.sin(theta)
            rotated = np.empty((len(arr), 2 * len(theta)))
            rotated[:, 0::2] = np.outer(lon, cos) + np.outer(lat, sin)
            rotated[:, 1::2] = np.outer(lat, cos) - np.outer(lon, sin)
            cols.append(rotated)
        xy = self._xy(arr)
        if len(self.city_names_):
            dist = np.sqrt(((xy[:, None, :] - self.city_xy_[None, :, :]) ** 2).sum(-1))
            cols.append(dist)
            cols.append(dist.min(axis=1)[:, None])
        if self.n_clusters:
            dist, label = self._cluster_tree.query(xy)
            cols.append(label[:, None].astype(np.float64))
            cols.append(dist[:, None])
        return np.column_stack(cols)

    def _neighbour_features(self, arr: np.ndarray, leave_one_out: bool) -> np.ndarray:
        xy = self._xy(arr)
        k = self.n_neighbors
        if not leave_one_out:
            dist, idx = self._tree.query(xy, k=k)
            dist, idx = dist.reshape(len(xy), k), idx.reshape(len(xy), k)
        else:
            dist, idx = self._tree.query(xy, k=k + 1)
            # drop each row's own index, wherever ties at distance 0 placed it
            keep = idx != np.arange(len(xy))[:, None]
            keep[keep.sum(axis=1) > k, -1] = False
            dist = dist[keep].reshape(len(xy), k)
            idx = idx[keep].reshape(len(xy), k)
        prices = self._y[idx]
        return np.column_stack(
            (
                prices.mean(axis=1),
                np.median(prices, axis=1),
                prices.std(axis=1),
                dist[:, -1],
            )
        )

    def _names(self) -> list[str]:
        names = list(FEATURES) + ["BedrmsPerRoom", "RoomsPerPerson", "LogHouseholds"]
        for deg in self.rotation_degrees:
            names += [f"RotX{deg:g}", f"RotY{deg:g}"]
        names += [f"KmTo{name}" for name in self.city_names_]
        if len(self.city_names_):
            names.append("KmToNearestCity")
        if self.n_clusters:
            names += ["LocationCluster", "KmToClusterCentre"]
        if self.n_neighbors:
            names += [
                "NeighbourPriceMean",
                "NeighbourPriceMedian",
                "NeighbourPriceStd",
                "NeighbourKmMax",
            ]
        return names
