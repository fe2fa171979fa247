"""``python -m lettercnn``: the ``letters`` command line."""

from lettercnn.cli import run

if __name__ == "__main__":
    run()
