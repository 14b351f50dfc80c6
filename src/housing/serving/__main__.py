"""``python -m housing.serving``: the same as ``housing serve`` (kept for existing scripts)."""

from housing.cli import serve

if __name__ == "__main__":
    serve(prog_name="python -m housing.serving")
