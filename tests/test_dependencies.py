"""Every third-party package that src/ imports is a declared dependency of the project.

A package that only arrives as another one's dependency (tqdm through optuna, altair
through streamlit) disappears the day that one drops it, and the install breaks."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.conftest import PROJECT_ROOT

SRC = PROJECT_ROOT / "src" / "housing"
UI = SRC / "ui"


def top_level_imports(path: Path) -> set[str]:
    """Absolute imports of ``path``, by top-level name (relative ones are the package's own)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def third_party(names: set[str]) -> set[str]:
    return {n for n in names if n not in sys.stdlib_module_names and n not in {"housing", "__future__"}}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    return {normalise(re.match(r"[A-Za-z0-9._-]+", r.strip()).group(0)) for r in requirements}


def declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    extras = {name: requirement_names(reqs) for name, reqs in project["optional-dependencies"].items()}
    return requirement_names(project["dependencies"]), extras


@cache
def installed() -> dict[str, list[str]]:
    return packages_distributions()


def distributions(module: str) -> set[str]:
    found = installed().get(module)
    assert found, f"`import {module}` in src/ but no installed distribution provides it"
    return {normalise(d) for d in found}


def test_every_third_party_import_in_src_is_a_declared_dependency():
    core, extras = declared()
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        # the UI is installed with the "ui" extra; everything else with the core dependencies
        allowed = core | extras["ui"] if UI in path.parents else core
        for module in sorted(third_party(top_level_imports(path))):
            if not distributions(module) & allowed:
                missing.append(
                    f"{path.relative_to(PROJECT_ROOT)}: {module} ({sorted(distributions(module))})"
                )
    assert not missing, "imported but not declared in pyproject.toml:\n" + "\n".join(missing)


def test_the_check_sees_imports_and_tells_stdlib_from_third_party(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os.path\nimport tqdm.auto\nfrom altair import Chart\nfrom . import x\n")
    assert third_party(top_level_imports(module)) == {"tqdm", "altair"}
    assert distributions("sklearn") == {"scikit-learn"}
    assert requirement_names(["kedro-datasets[pandas]~=9.6", "uvicorn[standard]>=0.30"]) == {
        "kedro-datasets",
        "uvicorn",
    }
