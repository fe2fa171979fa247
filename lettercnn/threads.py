"""How many threads torch computes with, and how to tell that they are being crowded out.

torch starts one thread per core it sees. When another program keeps a core busy, those
threads wait on each other at every operation and training collapses (issue 14: 24
images/s with one core busy, against 121 with a single thread and 225 on an idle
machine). So every torch command takes ``--threads``, and training watches its own
speed and says once when an epoch runs far slower than the first.

Standard library only: torch loads inside :func:`apply_threads`, so the command line can
import this module for its option defaults.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)

# The variable OpenMP (and so torch) reads its thread count from; a user's value wins.
OMP_ENV = "OMP_NUM_THREADS"
# An epoch below this share of the first epoch's images/s counts as crowded out. Epochs
# of one run vary by ~10-20% (augmentation, the schedule); a busy core cost 80-90%.
SLOWDOWN_RATIO = 0.4
SLOWDOWN_HINT = (
    "another program is probably using the cores; try fewer threads, e.g. --threads 1 (or stop the other program)"
)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), else all the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def default_threads(environ: Mapping[str, str] | None = None) -> int:
    """The torch thread count when none is given: ``OMP_NUM_THREADS`` if set, else :func:`usable_cores`.

    Args:
        environ: the environment to read; None: ``os.environ``.

    Returns:
        A positive thread count. An ``OMP_NUM_THREADS`` that is no positive integer
        (OpenMP accepts lists such as ``4,2``) counts by its first number, or is ignored.
    """
    return omp_threads(environ) or usable_cores()


def omp_threads(environ: Mapping[str, str] | None = None) -> int | None:
    """The thread count the user set in ``OMP_NUM_THREADS`` (its first number), else None."""
    environ = os.environ if environ is None else environ
    first = environ.get(OMP_ENV, "").split(",")[0].strip()
    return int(first) if first.isdigit() and int(first) > 0 else None


def resolve_threads(threads: int | None, environ: Mapping[str, str] | None = None) -> int:
    """``threads`` checked, or :func:`default_threads` when it is None.

    Raises:
        ValueError: a thread count below 1.
    """
    if threads is None:
        return default_threads(environ)
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    return threads


def apply_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads (and inter-op threads, while torch still allows it).

    Call it before the work starts: torch refuses a new inter-op count once it has run
    anything in parallel, and then only the intra-op count changes.

    Args:
        threads: the count; None: :func:`default_threads`.

    Returns:
        The count applied.

    Raises:
        ValueError: a thread count below 1.
    """
    count = resolve_threads(threads)
    import torch

    torch.set_num_threads(count)
    try:
        torch.set_num_interop_threads(count)
    except RuntimeError:  # "cannot set number of interop threads after parallel work has started"
        log.debug("torch's inter-op threads were already in use; kept at %d", torch.get_num_interop_threads())
    return count


def is_slowdown(first_images_per_s: float, images_per_s: float, ratio: float = SLOWDOWN_RATIO) -> bool:
    """Whether an epoch ran far slower than the first one (below ``ratio`` of its images/s)."""
    return first_images_per_s > 0 and images_per_s < ratio * first_images_per_s


def first_slowdown(images_per_s: Sequence[float], ratio: float = SLOWDOWN_RATIO) -> int | None:
    """The index of the first epoch far slower than epoch 0, or None.

    Args:
        images_per_s: each epoch's training throughput, first epoch first.
        ratio: see :func:`is_slowdown`.
    """
    for index, speed in enumerate(images_per_s[1:], start=1):
        if is_slowdown(images_per_s[0], speed, ratio):
            return index
    return None


class SlowdownWatch:
    """Follows a run's epochs and words the slowdown hint once, at the first slow epoch.

    The reference is the first epoch this watch sees (a resumed run compares with its
    own first epoch: the machine may have changed in between).
    """

    def __init__(self, threads: int, ratio: float = SLOWDOWN_RATIO) -> None:
        self.threads, self.ratio = threads, ratio
        self.speeds: list[float] = []
        self.warned = False

    def update(self, epoch: int, images_per_s: float) -> str | None:
        """Record an epoch's images/s; the warning text the first time one is far too slow, else None."""
        self.speeds.append(images_per_s)
        if self.warned or first_slowdown(self.speeds, self.ratio) is None:
            return None
        self.warned = True
        first = self.speeds[0]
        return (
            f"epoch {epoch} trained at {images_per_s:.0f} images/s, {images_per_s / first:.0%} of the first "
            f"epoch's {first:.0f} with {self.threads} thread{'s' if self.threads != 1 else ''}: {SLOWDOWN_HINT}"
        )
