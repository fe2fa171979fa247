"""The ``letters`` console script and ``python -m lettercnn``: the command line, started so
that an OpenCV that does not load is one ``Error:`` line, not a traceback.

:mod:`lettercnn.cli` imports OpenCV with the runtime modules, before its error boundary
exists. So ``cv2`` is tried first; where it fails (a system library missing, numpy 2 under
Debian's OpenCV) a stand-in takes its place (:func:`lettercnn.native.stand_in_if_broken`):
``letters --help`` still works, and every command prints the one line that names what is
missing and the fix, and exits 1.
"""

from lettercnn import native


def main() -> None:
    """Run the ``letters`` command line."""
    native.stand_in_if_broken(native.OPENCV)
    from lettercnn.cli import run

    run()


if __name__ == "__main__":
    main()
