"""Training in several processes with torch.distributed (DistributedDataParallel).

A run in N processes is the ordinary run, started by torch's launcher (``torchrun`` or
``letters train --nproc N``, see :mod:`lettercnn.training.launch`), which sets
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``. What each process does:

- joins the process group: gloo on the CPU, nccl on CUDA (one GPU per process,
  ``LOCAL_RANK``), with a timeout, so a process that stops answering ends the run
  instead of hanging it (a process that dies closes its connections and is noticed
  at once);
- rank 0 reads or renders the data, makes the run folder and sends both to the
  others (:func:`from_main`); the others wait for it;
- each process trains on its share of every global batch (``--batch-size`` is the
  global batch: each process takes ``batch_size / N``), and DDP averages the
  gradients, so a step is the step one process takes on the whole batch;
- BatchNorm normalises each process's share with its own statistics on gloo (the
  running averages are rank 0's: DDP broadcasts its buffers every step); on CUDA it
  is ``SyncBatchNorm``, statistics over the whole global batch;
- each process draws its own augmentation and dropout (:func:`rank_seed`; rank 0 the
  stream a single process draws), and ``last.pt`` keeps every process's random state,
  so a resumed run draws what an unbroken one would;
- rank 0 alone evaluates (the full validation and test sets, no sampler padding) and
  writes the run folder.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import signal
from collections.abc import Callable, Mapping
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from lettercnn.errors import TrainingError
from lettercnn.fileio import atomic_path

T = TypeVar("T")

# A process that waits longer than this for the others (rank 0 reading a large image
# tree or evaluating while they wait) ends the run with an error. torch's own default
# for gloo; a process that dies is noticed at once, not after the timeout.
PROCESS_GROUP_TIMEOUT = datetime.timedelta(minutes=30)
# What gloo says when another process of the run has gone (crashed, killed): that
# process, or the launcher, says why; the others just stop.
PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "Broken pipe")
# The exit status of a process that stopped because another one went: the launcher
# then names the other one, not this one.
EXIT_PEER_GONE = 3
# Where torch's elastic agent asks a failing process to write why (the launcher reads it).
ERROR_FILE_ENV = "TORCHELASTIC_ERROR_FILE"
# Test-only: "RANK:STEP" makes that rank fail at that training step (1-based, counted
# over the run) with an error, "RANK:STEP:kill" kills it with SIGKILL instead.
FAIL_AT_ENV = "LETTERCNN_TEST_FAIL_AT"


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place in the run: ``size`` processes, this one is ``rank``."""

    size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """Whether the run has more than one process."""
        return self.size > 1

    @property
    def main(self) -> bool:
        """Whether this process owns the files and the output (rank 0)."""
        return self.rank == 0

    def __str__(self) -> str:
        return f"rank {self.rank} of {self.size}"


def world_from_env(environ: Mapping[str, str] | None = None) -> World:
    """The run as torch's launcher describes it (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``); one process without them.

    Raises:
        ValueError: values that are no integers, or a rank outside the world.
    """
    environ = os.environ if environ is None else environ
    try:
        size, rank = int(environ.get("WORLD_SIZE", "1")), int(environ.get("RANK", "0"))
        local_rank = int(environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ValueError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (torchrun sets them)") from None
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"RANK {rank} is outside WORLD_SIZE {size}")
    return World(size, rank, local_rank)


def join(device: str, environ: Mapping[str, str] | None = None) -> World:
    """Join the run's process group, once per process (a no-op for a single process).

    Args:
        device: the resolved device, "cpu" or "cuda": gloo or nccl.
        environ: the environment; None: ``os.environ``.

    Returns:
        This process's :class:`World`.
    """
    world = world_from_env(environ)
    if world.active and not dist.is_initialized():
        if device == "cuda":
            torch.cuda.set_device(world.local_rank)  # "cuda" now means this process's GPU
        backend = "nccl" if device == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=PROCESS_GROUP_TIMEOUT)
    return world


def leave() -> None:
    """Leave the process group after a run that finished (not after a failure: just exit)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def from_main(world: World, make: Callable[[], T]) -> T:
    """``make()`` on rank 0, its result sent to every process (pickled); the others wait for it.

    An error in ``make`` is raised on rank 0; the others then stop when rank 0 exits.
    """
    if not world.active:
        return make()
    box = [make() if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]


def wrap(model: nn.Module, device: str, world: World) -> nn.Module:
    """``model`` as every process trains it: itself alone, or DistributedDataParallel (SyncBatchNorm on CUDA).

    The wrapper shares the model's parameters, so the optimizer and the checkpoints
    keep using ``model``.
    """
    if not world.active:
        return model
    if device == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[world.local_rank])
    return nn.parallel.DistributedDataParallel(model)


def per_rank_batch(batch_size: int, world: World) -> int:
    """Each process's share of the global batch.

    Raises:
        ValueError: a batch that does not split evenly over the processes.
    """
    if batch_size % world.size:
        raise ValueError(
            f"--batch-size {batch_size} is the global batch and must split evenly over {world.size} processes; "
            f"use a multiple of {world.size}"
        )
    return batch_size // world.size


def rank_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank``'s random streams (augmentation, dropout): ``seed`` itself
    for rank 0, so one process and rank 0 draw alike; another, independent one for each other rank."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence((seed, rank)).generate_state(1, np.uint32)[0])


def gather(value: T, world: World) -> list[T]:
    """``value`` from every process, in rank order (one process: ``[value]``); every process must call it."""
    if not world.active:
        return [value]
    values: list[T | None] = [None] * world.size
    dist.all_gather_object(values, value)
    return values  # type: ignore[return-value]


def sum_over_ranks(values: list[float], world: World) -> list[float]:
    """Each value summed over the processes (float64 on the CPU; on CUDA where nccl needs it)."""
    if not world.active:
        return values
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    summed = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(summed)
    return summed.tolist()


def check_world_size(run_dir: os.PathLike[str], saved: int, world: World) -> None:
    """A run resumes with the number of processes it trained with (its batches and BatchNorm depend on it).

    Raises:
        ValueError: the number differs, with the command that resumes it.
    """
    if saved == world.size:
        return
    with_saved = f"letters train --resume {run_dir}" + (f" --nproc {saved}" if saved > 1 else "")
    raise ValueError(
        f"{run_dir} trained in {saved} process{'es' if saved > 1 else ''}, not {world.size}; "
        f"resume it with the same number: {with_saved}"
    )


def is_peer_gone(error: BaseException) -> bool:
    """Whether ``error`` says only that another process of the run has gone (it says why itself)."""
    return isinstance(error, RuntimeError) and any(phrase in str(error) for phrase in PEER_GONE)


def record_error(message: str) -> None:
    """Leave ``message`` where torch's launcher looks for why a process failed (``TORCHELASTIC_ERROR_FILE``).

    torchrun shows it as the root cause; ``letters train --nproc`` knows from it that
    the process has already printed its error line.
    """
    file = os.environ.get(ERROR_FILE_ENV)
    if not file:
        return
    import time

    # torch's own layout (ErrorHandler.record_exception), with our line in place of a traceback.
    data = {"message": {"message": message, "extraInfo": {"py_callstack": message, "timestamp": str(int(time.time()))}}}
    with atomic_path(file) as temp:
        temp.write_text(json.dumps(data))


def failure_hook(world: World, environ: Mapping[str, str] | None = None) -> Callable[[int], None]:
    """Test-only: ``check(step)`` fails this process at the step :data:`FAIL_AT_ENV` names, if it names this rank."""
    spec = (os.environ if environ is None else environ).get(FAIL_AT_ENV, "")
    parts = spec.split(":")
    if len(parts) < 2 or int(parts[0]) != world.rank:
        return lambda _step: None
    at, kill = int(parts[1]), parts[2:] == ["kill"]

    def check(step: int) -> None:
        if step != at:
            return
        if kill:
            os.kill(os.getpid(), signal.SIGKILL)
        raise TrainingError(f"stopped at step {step} by {FAIL_AT_ENV} (a test hook)")

    return check
