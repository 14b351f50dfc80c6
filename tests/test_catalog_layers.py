"""Every catalog entry has a kedro-viz layer, and a file's layer is its data/0N_ folder."""

from __future__ import annotations

import re

import yaml

from tests.conftest import PROJECT_ROOT

FOLDER_LAYERS = {
    "01_raw": "raw",
    "02_intermediate": "intermediate",
    "03_primary": "primary",
    "04_feature": "feature",
    "05_model_input": "model_input",
    "06_models": "models",
    "07_model_output": "model_output",
    "08_reporting": "reporting",
}


def filepath(entry: dict) -> str | None:
    """The file an entry writes, also through a wrapper (kedro-mlflow's artifact dataset)."""
    return entry.get("filepath") or (entry.get("dataset") or {}).get("filepath")


def test_every_catalog_entry_has_the_layer_of_its_data_folder():
    catalog = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "catalog.yml").read_text())
    wrong = []
    for name, entry in catalog.items():
        layer = ((entry.get("metadata") or {}).get("kedro-viz") or {}).get("layer")
        if layer not in FOLDER_LAYERS.values():
            wrong.append(f"{name}: layer {layer!r}")
            continue
        folder = re.match(r"data/(0\d_[a-z_]+)/", filepath(entry) or "")
        if folder and FOLDER_LAYERS[folder.group(1)] != layer:
            wrong.append(f"{name}: layer {layer!r} but the file is in data/{folder.group(1)}/")
    assert not wrong, "\n".join(wrong)
