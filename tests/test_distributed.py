"""Tests of lettercnn.training.distributed and launch: DDP on the CPU (gloo), two processes.

Every process runs with one thread (OMP_NUM_THREADS=1), so two of them fit CI's 2 cores.
The runs are tiny (10 letters per class) and each launch is bounded by a timeout: a hang
fails the test instead of stalling the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from typer.testing import CliRunner

from lettercnn.cli import app
from lettercnn.errors import TrainingError
from lettercnn.nn.conv import Conv2d
from lettercnn.nn.losses import letter_loss
from lettercnn.nn.model import LetterCNN
from lettercnn.runs import BEST_CHECKPOINT, CONFIG_FILE, HISTORY_FILE, LAST_CHECKPOINT, METRICS_FILE, EpochRecord
from lettercnn.training.distributed import (
    EXIT_PEER_GONE,
    FAIL_AT_ENV,
    World,
    check_world_size,
    failure_hook,
    per_rank_batch,
    rank_seed,
    world_from_env,
)
from lettercnn.training.launch import _failure_status

runner = CliRunner()
# A launch of two tiny processes takes ~15 s on 2 idle cores; this bounds a hang.
LAUNCH_TIMEOUT_S = 240
TINY_DDP = ["--per-letter", "10", "--epochs", "2", "--batch-size", "32", "--name", "ddp"]
# 239 training images (with the images of no letter), 16 per process and step: 7 steps
# an epoch, so step 9 is inside epoch 2.
STEP_IN_EPOCH_2 = 9


def one_thread_env(**extra: str) -> dict[str, str]:
    """The environment of a launched run: one torch thread per process."""
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def letters_train(runs_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m lettercnn train --runs-dir RUNS ARGS`` in a subprocess, with a timeout."""
    command = [sys.executable, "-m", "lettercnn", "train", "--runs-dir", str(runs_dir), *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S, env=env or one_thread_env(), cwd=runs_dir
    )


def assert_one_loadable_run(runs_dir: Path, world_size: int) -> Path:
    """runs_dir holds one run folder, trained in ``world_size`` processes, with a best.pt that loads."""
    runs = [path for path in runs_dir.iterdir() if path.is_dir()]
    assert [run.name for run in runs] == ["ddp"]
    run = runs[0]
    assert json.loads((run / CONFIG_FILE).read_text())["world_size"] == world_size
    assert json.loads((run / METRICS_FILE).read_text())["world_size"] == world_size
    model = LetterCNN.from_checkpoint(run / BEST_CHECKPOINT)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 26)
    return run


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished two-process run (``letters train --nproc 2``), named ``ddp``."""
    runs_dir = tmp_path_factory.mktemp("ddp-runs")
    result = letters_train(runs_dir, *TINY_DDP, "--nproc", "2")
    assert result.returncode == 0, result.stderr
    assert "(2 processes x 1 thread)" in result.stdout
    assert result.stdout.count("Run folder:") == 1  # rank 0 alone reports
    return runs_dir / "ddp"


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """A two-process run whose rank 1 raised inside epoch 2 (the test hook), and its run folder."""
    runs_dir = tmp_path_factory.mktemp("failed-runs")
    env = one_thread_env(**{FAIL_AT_ENV: f"1:{STEP_IN_EPOCH_2}"})
    return letters_train(runs_dir, *TINY_DDP, "--nproc", "2", env=env), runs_dir / "ddp"


def assert_one_error_line(result: subprocess.CompletedProcess[str], needle: str) -> None:
    """The command failed with status 1 and said why on exactly one ``Error:`` line."""
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], result.stderr


# --- Units: the world, the batch, resume, the test hook, the launcher's verdict. ----------------


def test_the_world_comes_from_torchruns_environment() -> None:
    assert world_from_env({}) == World(1, 0, 0)
    world = world_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert (world.size, world.rank, world.local_rank, world.active, world.main) == (4, 3, 1, True, False)
    with pytest.raises(ValueError, match="RANK 2 is outside WORLD_SIZE 2"):
        world_from_env({"WORLD_SIZE": "2", "RANK": "2"})


def test_the_batch_size_is_global_and_must_split_over_the_processes() -> None:
    assert per_rank_batch(64, World(2, 0, 0)) == 32
    assert per_rank_batch(64, World()) == 64
    with pytest.raises(ValueError, match="global batch and must split evenly over 3 processes"):
        per_rank_batch(64, World(3, 0, 0))


def test_a_run_resumes_only_with_the_processes_it_trained_in() -> None:
    check_world_size(Path("runs/x"), 2, World(2, 0, 0))
    with pytest.raises(ValueError, match=r"trained in 2 processes, not 1; .*letters train --resume runs/x --nproc 2$"):
        check_world_size(Path("runs/x"), 2, World())
    with pytest.raises(ValueError, match=r"trained in 1 process, not 2; .*letters train --resume runs/x$"):
        check_world_size(Path("runs/x"), 1, World(2, 0, 0))


def test_the_failure_hook_stops_only_the_named_rank_at_the_named_step() -> None:
    environ = {FAIL_AT_ENV: "1:3"}
    failure_hook(World(2, 0, 0), environ)(3)  # rank 0: nothing
    check = failure_hook(World(2, 1, 1), environ)
    check(2)
    with pytest.raises(TrainingError, match="stopped at step 3"):
        check(3)


def failure(exitcode: int, error_file: str = "<N/A>") -> SimpleNamespace:
    """What torch's ChildFailedError holds per failed process."""
    return SimpleNamespace(exitcode=exitcode, error_file=error_file)


def test_the_launcher_names_a_killed_rank_and_stays_quiet_when_a_rank_said_why(tmp_path: Path) -> None:
    said = tmp_path / "error.json"
    said.write_text("{}")
    assert _failure_status({1: failure(1, str(said)), 0: failure(EXIT_PEER_GONE)}, 2) == 1
    assert _failure_status({0: failure(130), 1: failure(-signal.SIGTERM)}, 2) == 130
    with pytest.raises(TrainingError, match="rank 1 of 2 was killed by SIGKILL"):
        _failure_status({0: failure(EXIT_PEER_GONE), 1: failure(-signal.SIGKILL)}, 2)
    with pytest.raises(TrainingError, match="rank 1 of 2 exited with status 7"):
        _failure_status({0: failure(EXIT_PEER_GONE), 1: failure(7)}, 2)


# --- Our img2col Conv2d under DDP: the same step as one process on the whole batch. -------------

BATCH = 8
LR = 0.1


def one_sgd_step(model: torch.nn.Module, trained: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> None:
    """One SGD step of ``model``'s parameters through ``trained`` (itself, or its DDP wrapper)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    letter_loss(trained(images), labels, 0.5).backward()
    optimizer.step()


def the_model() -> LetterCNN:
    """The same weights in every process, in float64 (sums in another order then differ by ~1e-16,
    not float32's ~1e-7 amplified over five layers). No BatchNorm: its statistics would differ per rank."""
    torch.manual_seed(0)
    return LetterCNN(batch_norm=False, dropout=0.0).double()


def the_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(BATCH, 1, 32, 32, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 26, (BATCH,), generator=generator)
    return images, labels


def ddp_step(rank: int, world_size: int, init_file: str, out: str) -> None:
    """One process of the two: its half of the batch, through DistributedDataParallel."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    model = the_model()
    images, labels = the_batch()
    share = slice(rank * BATCH // world_size, (rank + 1) * BATCH // world_size)
    one_sgd_step(model, torch.nn.parallel.DistributedDataParallel(model), images[share], labels[share])
    if rank == 0:
        torch.save(model.state_dict(), out)
    dist.destroy_process_group()


def test_two_processes_on_half_batches_step_like_one_on_the_whole_batch(tmp_path: Path) -> None:
    out = tmp_path / "ddp.pt"
    mp.spawn(ddp_step, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    model = the_model()
    assert isinstance(model.block1.conv, Conv2d)  # our img2col convolution, its hand-written backward
    before = model.block1.conv.weight.detach().clone()
    one_sgd_step(model, model, *the_batch())
    assert not torch.equal(model.block1.conv.weight, before)
    ddp = torch.load(out, weights_only=True)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(ddp[name], value, rtol=1e-9, atol=1e-12)


# --- The launches: `letters train --nproc 2`, torchrun, a failing or killed process. -------------


def test_letters_train_nproc_2_writes_one_run_folder_with_world_size_2(ddp_run: Path) -> None:
    assert_one_loadable_run(ddp_run.parent, 2)
    assert [record["epoch"] for record in json.loads((ddp_run / HISTORY_FILE).read_text())] == [1, 2]


def test_each_process_draws_its_own_augmentation_and_last_pt_keeps_every_ones_random_state(ddp_run: Path) -> None:
    states = torch.load(ddp_run / LAST_CHECKPOINT, weights_only=True)["rng"]
    assert isinstance(states, list) and len(states) == 2
    # Both ranks drew as many samples; the same seed would leave the same state.
    assert not torch.equal(states[0]["torch"], states[1]["torch"])


def test_rank_0_draws_what_one_process_draws_and_every_other_rank_its_own_stream() -> None:
    assert rank_seed(7, 0) == 7
    seeds = {rank_seed(7, rank) for rank in range(1, 9)} | {rank_seed(8, 1)}
    assert len(seeds) == 9 and 7 not in seeds
    assert rank_seed(7, 3) == rank_seed(7, 3)


def test_torchrun_runs_the_ordinary_train_command(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "lettercnn",
        "train", "--runs-dir", str(tmp_path), *TINY_DDP, "--epochs", "1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S, env=one_thread_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Run folder:") == 1
    assert_one_loadable_run(tmp_path, 2)


def test_a_process_failing_mid_epoch_stops_every_process_with_one_error_line(
    failed_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, run = failed_run
    assert_one_error_line(result, f"Error: rank 1 of 2: stopped at step {STEP_IN_EPOCH_2}")
    assert torch.load(run / LAST_CHECKPOINT, weights_only=True)["epoch"] == 1  # intact: the last finished epoch


def test_a_killed_process_stops_every_process_with_one_error_line_naming_it(tmp_path: Path) -> None:
    env = one_thread_env(**{FAIL_AT_ENV: f"1:{STEP_IN_EPOCH_2}:kill"})
    result = letters_train(tmp_path, *TINY_DDP, "--nproc", "2", env=env)
    assert_one_error_line(result, "Error: rank 1 of 2 was killed by SIGKILL; every process stopped")
    assert torch.load(tmp_path / "ddp" / LAST_CHECKPOINT, weights_only=True)["epoch"] == 1


@pytest.mark.slow
def test_a_run_resumed_after_a_failure_matches_an_unbroken_one(
    ddp_run: Path, failed_run: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    run = tmp_path / "ddp"
    shutil.copytree(failed_run[1], run)
    resumed = letters_train(tmp_path, "--resume", str(run), "--nproc", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 1/2" in resumed.stdout
    history = [EpochRecord(**r) for r in json.loads((run / HISTORY_FILE).read_text())]
    unbroken = [EpochRecord(**r) for r in json.loads((ddp_run / HISTORY_FILE).read_text())]
    for got, want in zip(history, unbroken, strict=True):
        assert (got.train_loss, got.val_acc) == pytest.approx((want.train_loss, want.val_acc), rel=1e-5)


@pytest.mark.parametrize("nproc", [[], ["--nproc", "3"]])
def test_resuming_with_another_number_of_processes_is_one_error_line(
    failed_run: tuple[subprocess.CompletedProcess[str], Path], nproc: list[str]
) -> None:
    run = failed_run[1]
    result = runner.invoke(app, ["train", "--resume", str(run), *nproc])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        f"Error: {run} trained in 2 processes, not {nproc[1] if nproc else 1}; resume it with the same number: "
        f"letters train --resume {run} --nproc 2"
    ]
