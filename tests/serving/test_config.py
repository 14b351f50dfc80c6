"""serving.yml is checked at start-up: an unknown key or a wrong type is refused with the
file and the key named, never dropped silently."""

import pytest
import yaml

from housing.serving.config import ServingConfig, SettingsError
from tests.conftest import PROJECT_ROOT

BASE = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "serving.yml").read_text())


def _conf(**changes):
    conf = {**BASE, **changes}
    conf["prediction_log"] = {**BASE["prediction_log"], "uri": "sqlite:///log.db"}
    return conf


def test_the_committed_settings_pass():
    config = ServingConfig.from_conf(_conf(), "conf/base/serving.yml")
    assert config.prediction_log_uri == "sqlite:///log.db" and config.max_batch_rows > 0


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        (_conf(max_batch_row=5), "conf/base/serving.yml: unknown key 'max_batch_row'; allowed: ["),
        (
            {**_conf(), "prediction_log": {"uri": "sqlite:///x.db", "tabel": "p"}},
            "unknown key 'prediction_log.tabel'; allowed: ['max_commit_rows', 'max_queue', 'pool', 'sqlite_synchronous', 'table', 'uri']",
        ),
        (_conf(max_batch_rows="many"), "'max_batch_rows' must be a non-negative number, got 'many'"),
        (_conf(poll_seconds=-1), "'poll_seconds' must be a non-negative number, got -1"),
        (
            {**_conf(), "prediction_log": {"uri": "sqlite:///x.db", "max_queue": 0}},
            "'prediction_log.max_queue' must be a whole number >= 1, got 0",
        ),
        (
            {**_conf(), "prediction_log": {"uri": "sqlite:///x.db", "max_commit_rows": "all"}},
            "'prediction_log.max_commit_rows' must be a whole number >= 1, got 'all'",
        ),
    ],
)
def test_a_bad_setting_names_the_file_and_the_key(conf, message):
    with pytest.raises(SettingsError) as err:
        ServingConfig.from_conf(conf, "conf/base/serving.yml")
    assert message in str(err.value)
