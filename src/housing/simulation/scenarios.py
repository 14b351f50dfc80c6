"""Production traffic you can replay: scenarios built on the held-out (test) rows.

Traffic comes only from the even-numbered held-out rows (``traffic_pool``); the
odd-numbered ones (``unseen_rows``) never become traffic, so a model retrained on
replayed traffic can still be judged on test rows it has not seen in any form.

Each returns the eight features in request order plus ``actual`` (the ground truth that
arrives later through POST /feedback) and ``t`` (0 -> 1: how far into the scenario a row
is, for shifts that grow over time). Seeded: the same parameters give the same traffic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from housing.contract import FEATURES, TARGET


def traffic_pool(test: pd.DataFrame) -> pd.DataFrame:
    """Held-out rows that scenarios may replay: even row numbers of the original table."""
    return test[test.index % 2 == 0]


def unseen_rows(test: pd.DataFrame) -> pd.DataFrame:
    """Held-out rows that are never replayed: odd row numbers of the original table."""
    return test[test.index % 2 == 1]


def _draw(rows: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    idx = rng.choice(len(rows), size=n, replace=n > len(rows))
    return rows.iloc[idx].reset_index(drop=True)


def stable(test: pd.DataFrame, n: int, rng: np.random.Generator, **_: Any) -> pd.DataFrame:
    """Rows drawn from the held-out data: the distribution the model was trained on."""
    return _draw(test, n, rng)


PRICE_CAP = 5.00001  # MedHouseVal is top-coded at $500,001 in the census data


def inflation(
    test: pd.DataFrame,
    n: int,
    rng: np.random.Generator,
    medinc_growth: float,
    population_growth: float,
    bedrooms_growth: float,
    price_growth: float,
    **_: Any,
) -> pd.DataFrame:
    """Incomes and prices rising over time, people moving in: each factor grows linearly
    from 1 to 1 + growth across the scenario (MedInc moderately, Population and AveBedrms
    strongly). Bedrooms stay within rooms, as the API requires; prices stay top-coded at
    the census cap (5.00001), as real labels are and as POST /feedback accepts."""
    rows = _draw(test, n, rng)
    t = np.linspace(0.0, 1.0, n)
    rows["MedInc"] = rows["MedInc"] * (1 + medinc_growth * t)
    rows["Population"] = np.round(rows["Population"] * (1 + population_growth * t))
    rows["AveBedrms"] = np.minimum(rows["AveBedrms"] * (1 + bedrooms_growth * t), rows["AveRooms"])
    rows[TARGET] = np.minimum(rows[TARGET] * (1 + price_growth * t), PRICE_CAP)
    return rows


def geographic(
    test: pd.DataFrame, n: int, rng: np.random.Generator, max_latitude: float, **_: Any
) -> pd.DataFrame:
    """Traffic from one region only (south of ``max_latitude``: Los Angeles, San Diego)."""
    south = test[test["Latitude"] <= max_latitude]
    if south.empty:
        raise ValueError(f"geographic: no held-out rows at Latitude <= {max_latitude}")
    return _draw(south, n, rng)


def regional(
    test: pd.DataFrame,
    n: int,
    rng: np.random.Generator,
    box: dict[str, list[float]],
    price_growth: float,
    region_share: float,
    **_: Any,
) -> pd.DataFrame:
    """Prices rise by ``price_growth`` inside one region only (``box``: ``latitude`` and
    ``longitude`` ranges), at once; ``region_share`` of the traffic comes from there, the
    rest from the whole state at unchanged prices. Inputs are the districts as they are."""
    lat, lon = test["Latitude"], test["Longitude"]
    inside = lat.between(*box["latitude"]) & lon.between(*box["longitude"])
    if not inside.any():
        raise ValueError(f"regional: no held-out rows inside {box}")
    n_region = int(round(n * region_share))
    rows = pd.concat(
        [_draw(test[inside], n_region, rng), _draw(test[~inside], n - n_region, rng)], ignore_index=True
    )
    rows = rows.iloc[rng.permutation(n)].reset_index(drop=True)
    moved = rows["Latitude"].between(*box["latitude"]) & rows["Longitude"].between(*box["longitude"])
    rows[TARGET] = np.where(moved, np.minimum(rows[TARGET] * (1 + price_growth), PRICE_CAP), rows[TARGET])
    return rows


def income_shift(test: pd.DataFrame, n: int, rng: np.random.Generator, tilt: float, **_: Any) -> pd.DataFrame:
    """Richer districts ask more often (a row's odds grow as exp(tilt x its standardised
    MedInc)); prices are the true ones: the inputs move, the price of a house does not."""
    income = test["MedInc"].to_numpy()
    odds = np.exp(tilt * (income - income.mean()) / income.std())
    idx = rng.choice(len(test), size=n, replace=True, p=odds / odds.sum())
    return test.iloc[idx].reset_index(drop=True)


SCENARIOS = {
    "stable": stable,
    "inflation": inflation,
    "geographic": geographic,
    "regional": regional,
    "income_shift": income_shift,
}


def make_scenario(test: pd.DataFrame, name: str, n: int, settings: dict[str, Any]) -> pd.DataFrame:
    """``n`` rows of scenario ``name`` with its ``settings`` (seed and shift sizes)."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {sorted(SCENARIOS)}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(settings.get("seed", 0))
    pool = traffic_pool(test)
    rows = SCENARIOS[name](pool, n, rng, **{k: v for k, v in settings.items() if k != "seed"})
    out = rows.loc[:, list(FEATURES)].astype(float)
    out["actual"] = rows[TARGET].to_numpy()
    out["t"] = np.linspace(0.0, 1.0, n)
    return out
