"""Run a function over chunks of items in worker processes, keeping the order.

Decoding a big image tree and rendering a big synthetic set are CPU-bound and
embarrassingly parallel. Results never depend on the number of workers: each item
carries everything it needs (a path, or a sample index that seeds its own random
generator), and chunks come back in order.

Workers are started with ``spawn`` (the same on Linux, macOS and Windows, and safe
after torch has started its threads), so the function must live in a module that
imports quickly: this module and the ones it serves import no torch.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from lettercnn.threads import usable_cores

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

# Called as progress(done, total) while a long job runs; no Rich, no printing here.
Progress = Callable[[int, int], None]

# Below this many items a pool costs more to start (a fresh interpreter per worker,
# ~0.5 s) than it saves.
PARALLEL_MIN_ITEMS = 5000
# Items handed to a worker at once: large enough to hide the pickling overhead,
# small enough to keep the progress callback lively.
CHUNK_SIZE = 512
# More processes than this gives little on a data-loading job and costs memory.
MAX_AUTO_WORKERS = 8


def resolve_workers(workers: int | None, items: int) -> int:
    """How many processes to use.

    Args:
        workers: ``None`` to decide from the machine and the job size, ``0`` or ``1``
            for no pool, more for that many processes.
        items: number of items in the job.

    Returns:
        The number of processes (1 means: run in this process).

    Raises:
        ValueError: ``workers`` is negative.
    """
    if workers is not None and workers < 0:
        raise ValueError(f"workers must be None or >= 0, got {workers}")
    if workers is None:
        if items < PARALLEL_MIN_ITEMS:
            return 1
        return max(1, min(usable_cores(), MAX_AUTO_WORKERS))  # a CPU-limited container: its share
    return max(1, workers)


def map_chunks(
    func: Callable[[Sequence[Item]], Result],
    items: Sequence[Item],
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[Result]:
    """Apply ``func`` to consecutive chunks of ``items``, yielding results in chunk order.

    Args:
        func: a module-level function (picklable) taking a chunk (a list of items).
        items: the work, e.g. file paths or sample indices.
        workers: see :func:`resolve_workers`.
        progress: called as ``progress(done, total)`` after each chunk is yielded back.
        chunk_size: items per chunk.

    Yields:
        One result per chunk, in the order of the chunks.
    """
    chunks = [list(items[start : start + chunk_size]) for start in range(0, len(items), chunk_size)]
    processes = min(resolve_workers(workers, len(items)), max(1, len(chunks)))
    if processes == 1:
        yield from _report(chunks, map(func, chunks), len(items), progress)
        return
    log.debug("running %d chunks on %d processes", len(chunks), processes)
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=processes, mp_context=context, initializer=_one_thread_each)
    try:
        yield from _report(chunks, pool.map(func, chunks), len(items), progress)
    finally:  # on an error or Ctrl-C, drop the chunks not started instead of waiting for them
        pool.shutdown(wait=True, cancel_futures=True)


def _one_thread_each() -> None:
    """Worker start-up: the pool is the parallelism; OpenCV's own threads would compete."""
    import cv2  # the workers' jobs use OpenCV anyway

    cv2.setNumThreads(1)


def _report(
    chunks: list[list[Item]], results: Iterator[Result], total: int, progress: Progress | None
) -> Iterator[Result]:
    """Pass results through, calling ``progress`` after each one is consumed."""
    done = 0
    for chunk, result in zip(chunks, results, strict=True):
        yield result
        done += len(chunk)
        if progress is not None:
            progress(done, total)


def offset_progress(progress: Progress, offset: int, total: int, done: int, _part: int) -> None:
    """Report one part's ``(done, part)`` as progress over the whole job of ``total`` items.

    Bind the first three with ``functools.partial`` for the part that starts at ``offset``.
    """
    progress(offset + done, total)
