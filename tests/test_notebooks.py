"""The notebooks in notebooks/: committed without outputs, reading only through the
Kedro catalog, and runnable top to bottom against a trained project.

The execution test runs each notebook with nbclient in a copy of the project trained by
``kedro run --env test`` (the ``trained_project`` fixture), with the copy's own MLflow
store and data. ``%load_ext kedro.ipython`` finds the project from the kernel's working
directory and ``KedroSession.create`` reads ``KEDRO_ENV``, so the committed notebooks
carry no test-only code.
"""

from __future__ import annotations

import os
import re
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT, clean_env

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOKS = {
    "01_exploration_and_preparation.ipynb": 5,  # figures each notebook must show
    "02_shap.ipynb": 4,
}
CELL_TIMEOUT_SECONDS = 600
# what reading through the catalog rules out: paths into data/, data files, MLflow stores
HARD_CODED_IO = re.compile(r"data/0\d|\.csv\b|\.parquet\b|mlflow\.db|sqlite:|read_csv|read_parquet|models:/")


def _code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_notebooks_are_all_known():
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_is_committed_clean_and_reads_through_the_catalog(name):
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"

    cells = _code_cells(notebook)
    with_outputs = [i for i, cell in enumerate(notebook.cells) if cell.get("outputs")]
    with_counts = [i for i, cell in enumerate(notebook.cells) if cell.get("execution_count") is not None]
    assert not with_outputs, f"{name}: clear the outputs of cells {with_outputs} before committing"
    assert not with_counts, f"{name}: clear the execution counts of cells {with_counts} before committing"

    assert cells[0].source.splitlines()[0] == "%load_ext kedro.ipython"
    assert "catalog.load(" in "\n".join(cell.source for cell in cells)
    hard_coded = [cell.source for cell in cells if HARD_CODED_IO.search(cell.source)]
    assert not hard_coded, f"{name}: read data and models through the catalog, not paths: {hard_coded}"


@pytest.fixture
def kernel_environment(monkeypatch):
    """The kernel inherits this process's environment: make it ``clean_env()`` (no
    MLFLOW_* or HOUSING_* overrides, so the project copy's own stores are used) and pick
    the light configuration through KEDRO_ENV, as ``kedro run --env test`` did."""
    wanted = {**clean_env(), "KEDRO_ENV": "test"}
    for name in set(os.environ) - set(wanted):
        monkeypatch.delenv(name)
    for name, value in wanted.items():
        monkeypatch.setenv(name, value)


@pytest.mark.e2e
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs_top_to_bottom(name, trained_project, kernel_environment, tmp_path):
    workdir = trained_project / "notebooks"  # where a user opens them: %load_ext walks up to the project
    workdir.mkdir(exist_ok=True)
    shutil.copy(NOTEBOOK_DIR / name, workdir / name)
    notebook = nbformat.read(workdir / name, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_SECONDS,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )

    try:
        client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    finally:
        executed = tmp_path / name  # kept for inspection: pytest's tmp_path of this test
        nbformat.write(notebook, executed)

    outputs = [output for cell in _code_cells(notebook) for output in cell.outputs]
    assert all(cell.execution_count for cell in _code_cells(notebook)), "not every cell ran"
    assert not [o for o in outputs if o.output_type == "error"]
    figures = sum("image/png" in o.get("data", {}) for o in outputs)
    assert figures >= NOTEBOOKS[name], f"{name} showed {figures} figure(s); executed copy: {executed}"
