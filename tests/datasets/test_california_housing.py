import pandas as pd
import pytest
from kedro.io.core import DatasetError

from housing.datasets import CaliforniaHousingDataset
from housing.datasets import california_housing as module


@pytest.fixture
def frame(raw_housing):
    return raw_housing.head(20)


def test_existing_file_is_read_without_download(tmp_path, frame, monkeypatch):
    path = tmp_path / "raw.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setattr(module, "_fetch_frame", lambda: pytest.fail("must not download"))
    pd.testing.assert_frame_equal(CaliforniaHousingDataset(filepath=str(path)).load(), frame)


def test_missing_file_is_downloaded_and_saved(tmp_path, frame, monkeypatch):
    path = tmp_path / "01_raw" / "raw.csv"
    monkeypatch.setattr(module, "_fetch_frame", lambda: frame)
    loaded = CaliforniaHousingDataset(filepath=str(path)).load()
    assert path.exists()
    pd.testing.assert_frame_equal(loaded, frame)
    pd.testing.assert_frame_equal(pd.read_csv(path), frame)


def test_offline_without_file_says_where_to_put_it(tmp_path, monkeypatch):
    path = tmp_path / "raw.csv"

    def offline():
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(module, "_fetch_frame", offline)
    with pytest.raises(DatasetError) as err:
        CaliforniaHousingDataset(filepath=str(path)).load()
    message = str(err.value)
    assert str(path) in message
    assert "downloading it with scikit-learn failed (OSError" in message
    assert "copy a California Housing CSV" in message
    assert "../shared" not in message  # a user's clone has no such folder
    assert not path.exists()


def test_download_can_be_switched_off(tmp_path):
    with pytest.raises(DatasetError, match="does not exist. Place the California Housing CSV"):
        CaliforniaHousingDataset(filepath=str(tmp_path / "raw.csv"), fetch=False).load()


def test_a_download_is_written_atomically(tmp_path, raw_housing, monkeypatch):
    target = tmp_path / "raw" / "california_housing.csv"

    class Partial(pd.DataFrame):
        def to_csv(self, handle, **kwargs):
            handle.write("MedInc,HouseAge\n1.0,")  # half a file, then the process dies
            raise KeyboardInterrupt

    monkeypatch.setattr(module, "_fetch_frame", lambda: Partial(raw_housing.head(5)))
    dataset = module.CaliforniaHousingDataset(filepath=str(target))
    with pytest.raises(KeyboardInterrupt):
        dataset.load()
    assert list(target.parent.iterdir()) == []  # no truncated file left for the next run
    monkeypatch.setattr(module, "_fetch_frame", lambda: raw_housing.head(5))
    assert len(dataset.load()) == 5 and target.exists()
