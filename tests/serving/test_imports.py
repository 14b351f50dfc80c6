"""The API process carries no plotting code: matplotlib and shap's plots cost start-up
time and memory and an API never draws."""

import subprocess
import sys

PROBE = "import sys, housing.serving.app, housing.serving.model; print(sorted(m for m in sys.modules if m.split('.')[0] in {'matplotlib', 'shap'}))"


def test_the_api_imports_no_plotting_library():
    run = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    assert run.stdout.strip() == "[]"
