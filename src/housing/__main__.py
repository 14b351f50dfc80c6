"""``python -m housing`` and the ``housing`` script: the click group of ``housing.cli``."""

from housing.cli import cli


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
