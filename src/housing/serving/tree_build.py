"""The C compiler's two jobs. The tree tables' kernel (``tree_kernel.c``): built in the API's
process, once per machine, in a second. A model's trees as a shared library, for a model
the tables cannot hold: in the child process the API starts (``compiled.py``), treelite
reads the LightGBM model file, tl2cgen writes C, this module fixes that C, the system's C
compiler builds it (minutes).

    python -m housing.serving.tree_build MODEL.txt LIB.so [--compiler gcc] [--jobs 1]

builds one library by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

KERNEL = "tree_kernel.c"
FLAGS = ["-O3", "-march=native", "-shared", "-fPIC"]

# translation units the trees are split into: the compiler builds them in parallel and
# a few-thousand-tree model stays within a compiler's memory
_UNITS = 8
# what the generated code is, beside tl2cgen's version: part of the libraries' cache key
CODEGEN = f"quantize units={_UNITS} without missing tests, predict_batch"

# tl2cgen marks an absent value by writing -1 over the low 32 bits of the double
# (``union Entry {int missing; double fvalue;}``), so a present value whose low bits are
# all ones (rows of this data do: RoomsPerPerson = 2.5454545454545454...) was taken for a
# missing one. The API never sends a missing value (NaN is refused), so every test for
# one is dropped from the generated code.
_MISSING_TEST = re.compile(r"data\[(?:\d+|i)\]\.missing != -1")


# Rows of a C-contiguous float64 matrix through the same ``predict`` one row uses (so the
# same numbers), with no Python between rows: a caller splits a batch over threads.
_PREDICT_BATCH = """
void predict_batch(const double* rows, long long n_rows, double* out) {
  const int n_features = get_num_feature();
  union Entry data[n_features];
  for (long long i = 0; i < n_rows; ++i) {
    for (int j = 0; j < n_features; ++j) data[j].fvalue = rows[i * n_features + j];
    double result = 0.0;
    predict(data, 0, &result);
    out[i] = result;
  }
}
"""


def build_library(model_file: Path, library: Path, compiler: str, jobs: int) -> None:
    """treelite -> C (without missing-value tests) -> ``library``, written whole or not at all."""
    import tl2cgen  # noqa: PLC0415
    import treelite  # noqa: PLC0415

    model = treelite.frontend.load_lightgbm_model(str(model_file))
    with tempfile.TemporaryDirectory(prefix="housing-trees-c-") as source:
        tl2cgen.generate_c_code(model, source, params={"parallel_comp": _UNITS, "quantize": 1})
        found = 0
        for path in Path(source).glob("*.c"):
            code, n = _MISSING_TEST.subn("1", path.read_text())
            path.write_text(code)
            found += n
        if not found:
            raise RuntimeError(
                f"tl2cgen {tl2cgen.__version__} wrote no missing-value test to remove: unknown code"
            )
        with (Path(source) / "main.c").open("a") as main:
            main.write(_PREDICT_BATCH)
        built = tl2cgen.create_shared(compiler, source, nthread=jobs, long_build_time_warning=False)
        partial = library.with_name(f".{library.name}.{os.getpid()}.tmp")
        try:
            shutil.move(built, partial)
            os.replace(partial, library)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()


def _cpu_flags() -> str:
    """The CPU's feature flags: a kernel built with -march=native runs on this CPU only."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return os.uname().machine


def build_kernel(compiler: str, cache_dir: Path, timeout: float) -> Path:
    """The kernel for this machine, compiled once (a second) into ``cache_dir`` and shared
    by every process and model there. ``RuntimeError`` names what went wrong."""
    source = resources.files("housing.serving").joinpath(KERNEL).read_bytes()
    digest = hashlib.sha256(source)
    digest.update(" ".join([compiler, *FLAGS, _cpu_flags()]).encode())
    library = cache_dir / f"kernel-{digest.hexdigest()[:24]}.so"
    if library.exists():
        return library
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(library.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it
        if library.exists():
            return library
        partial = library.with_name(f".{library.name}.{os.getpid()}.tmp")
        written = cache_dir / f".{library.stem}.{os.getpid()}.c"
        written.write_bytes(source)
        try:
            done = subprocess.run(
                [compiler, *FLAGS, "-o", str(partial), str(written), "-lm"],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if done.returncode != 0:
                lines = done.stderr.strip().splitlines()
                raise RuntimeError(
                    f"{compiler} failed on {KERNEL}: {lines[-1] if lines else done.returncode}"
                )
            os.replace(partial, library)
        finally:
            written.unlink(missing_ok=True)
            partial.unlink(missing_ok=True)
    return library


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compile a LightGBM model file to a shared library.")
    parser.add_argument("model", type=Path, help="LightGBM text model (Booster.save_model)")
    parser.add_argument("library", type=Path, help="the .so to write")
    parser.add_argument("--compiler", default="gcc")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        build_library(args.model, args.library, args.compiler, args.jobs)
    except Exception as exc:  # one line for the parent's status, no traceback
        sys.stderr.write(f"building {args.library.name} failed: {type(exc).__name__}: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
