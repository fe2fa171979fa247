"""``letters train --nproc N``: the train command in N processes on this machine, through torch's launcher.

It is ``torchrun --standalone --nproc-per-node N -m lettercnn train ...`` run from
inside the command (:func:`torch.distributed.run.main`), not a process pool of our
own: torch's elastic agent starts the processes, gives them their rendezvous and
stops them all when one fails. What is ours is the one line a failure ends with:
a process that fails says why itself (and leaves it in torch's error file, see
:func:`lettercnn.training.distributed.record_error`); for one that was killed
without a word, the launcher says which rank and how.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator, Mapping, Sequence

from lettercnn.errors import TrainingError
from lettercnn.threads import OMP_ENV, omp_threads, resolve_threads, usable_cores
from lettercnn.training import distributed
from lettercnn.training.config import TrainConfig
from lettercnn.training.distributed import EXIT_PEER_GONE

# How often torch's agent checks on its processes (its default, 5 s, would let a run
# with a dead process sit for seconds before the others are stopped).
MONITOR_INTERVAL_S = 0.5
# torch's loggers that narrate the launch (a closing signal sent, the failure table);
# our own line replaces them.
TORCH_LAUNCH_LOGGERS = ("torch.distributed.elastic", "torch.distributed.run", "torch.distributed.launcher")
# Exit statuses of a process stopped on purpose (by Ctrl-C, or by the agent after
# another process failed): 130 from our error boundary, or the signal itself.
STOPPED = {130, -signal.SIGTERM, -signal.SIGINT, 128 + signal.SIGTERM, EXIT_PEER_GONE}


def threads_per_process(threads: int | None, nproc: int, environ: Mapping[str, str] | None = None) -> int:
    """torch threads for each of ``nproc`` processes: ``threads``; else the user's
    ``OMP_NUM_THREADS`` (OpenMP reads it per process); else the usable cores shared out (at least 1)."""
    if threads is not None:
        return threads
    return omp_threads(environ) or max(1, usable_cores() // nproc)


def launch_run(
    args: Sequence[str], config: TrainConfig, resume: os.PathLike[str] | None, nproc: int, threads: int | None
) -> int:
    """``letters train --nproc N``: check here what would fail in every process, then :func:`launch_train`.

    Args:
        args: the train command's options, without ``--nproc`` and ``--threads``.
        config: the run's config as the command built it (for ``--resume``: the saved one).
        resume: the run to continue, if any.
        nproc: processes to start.
        threads: torch threads per process; None: the usable cores shared out.

    Returns:
        The run's exit status (see :func:`launch_train`).

    Raises:
        ValueError: under torchrun already; nproc below 1; a resumed run trained in
            another number of processes; a batch that does not split over them.
    """
    if distributed.world_from_env().active:
        raise ValueError("--nproc starts its own processes; under torchrun leave it out")
    if nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {nproc}")
    target = distributed.World(size=nproc)
    if resume is not None:
        distributed.check_world_size(resume, config.world_size, target)
    distributed.per_rank_batch(config.batch_size, target)
    return launch_train(args, nproc, threads_per_process(None if threads is None else resolve_threads(threads), nproc))


def launch_train(args: Sequence[str], nproc: int, threads: int) -> int:
    """Run ``python -m lettercnn train ARGS --threads THREADS`` in ``nproc`` processes.

    Args:
        args: the train command's options, without ``--nproc`` and ``--threads``.
        nproc: processes on this machine (>= 1).
        threads: torch threads per process (also their ``OMP_NUM_THREADS``).

    Returns:
        0 when the run finished; 1 when a process failed and said why; 130 when the
        run was interrupted (rank 0 said so).

    Raises:
        TrainingError: a process died without saying why (killed), named by rank.
        KeyboardInterrupt: the launcher itself was told to stop (SIGTERM).
    """
    from torch.distributed import run
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    argv = [
        "--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0", f"--monitor-interval={MONITOR_INTERVAL_S}",
        "-m", "lettercnn", "train", *args, "--threads", str(threads),
    ]  # fmt: skip
    with _quiet_torch_launch(), _environment({OMP_ENV: str(threads)}):
        try:
            run.main(argv)
        except ChildFailedError as failed:
            return _failure_status(failed.failures, nproc)
        except SignalException as stop:
            if stop.sigval == signal.SIGINT:
                return 130  # Ctrl-C reached every process; rank 0 has said what last.pt keeps
            raise KeyboardInterrupt from None
    return 0


def _failure_status(failures: dict[int, object], nproc: int) -> int:
    """The exit status for failed processes; TrainingError for one that died without saying why."""
    said = [rank for rank, failure in failures.items() if os.path.isfile(str(getattr(failure, "error_file", "")))]
    if said:
        return 1  # it printed its one Error line
    codes = {rank: int(getattr(failure, "exitcode", 1)) for rank, failure in failures.items()}
    for rank, code in sorted(codes.items()):
        if code < 0 and code not in STOPPED:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            raise TrainingError(
                f"rank {rank} of {nproc} was killed by {name}; every process stopped, and last.pt keeps the last "
                "finished epoch (resume with the same --nproc)"
            )
    if all(code in STOPPED for code in codes.values()):
        return 130
    rank, code = min((rank, code) for rank, code in codes.items() if code not in STOPPED)
    raise TrainingError(
        f"rank {rank} of {nproc} exited with status {code} (its output is above); every process stopped"
    )


@contextlib.contextmanager
def _quiet_torch_launch() -> Iterator[None]:
    """Silence torch's launch narration while it runs (warnings and the failure table)."""
    import torch.distributed.elastic.agent.server.local_elastic_agent  # noqa: F401 - its loggers exist now
    import torch.distributed.launcher.api  # noqa: F401

    known = list(logging.Logger.manager.loggerDict)  # torch gives each module's logger its own level
    loggers = [logging.getLogger(name) for name in known if name.startswith(TORCH_LAUNCH_LOGGERS)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set while the block runs (the processes inherit it)."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
