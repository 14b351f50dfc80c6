import pytest

from housing.pipelines.data_processing.features import row_fingerprints


@pytest.fixture(scope="module")
def current_champion(champion, split):
    """The champion as the catalog's ``current_champion`` hands it to retraining."""
    return {
        "name": "california-housing",
        "version": 1,
        "model": champion,
        "training_rows": row_fingerprints(split[0]),
        "drift_reference_run_id": "run-of-version-1",
    }
