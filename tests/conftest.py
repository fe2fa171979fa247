"""Fixtures shared by the test modules: a letter tree, an untrained checkpoint, a tiny run and its model.

Each is built once per session, in its own temporary folder, and only read by the
tests (a test that changes files copies them first). torch and the training side are
imported inside the fixtures, so collecting the torch-free tests loads neither.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from lettercnn.training.loop import RunResult

# A suite started in the background by a shell without job control (`nohup pytest &`,
# `sh -c '... &'`) inherits SIGINT ignored, and so would every child it starts, which then
# never sees the Ctrl-C the tests send it (`letters train` and `letters web --serve` are
# stopped so). A handler, unlike "ignored", is reset to the default in a child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# A run of a few seconds on 2 cores: 8/1/1 synthetic images per letter, two epochs.
TINY = {"per_letter": 10, "epochs": 2, "batch_size": 32, "seed": 0}


@pytest.fixture(scope="session")
def letter_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small image tree A/..Z/: 3 synthetic letters each (seed 1), as `letters data synth` writes them."""
    from lettercnn.data import write_synthetic

    out = tmp_path_factory.mktemp("data") / "letters"
    write_synthetic(out, 3, seed=1)
    return out


@pytest.fixture(scope="session")
def untrained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of an untrained model, saying nothing of its data (eval needs a valid file, not a good one)."""
    import torch

    from lettercnn.nn.checkpoint import checkpoint_payload
    from lettercnn.nn.model import LetterCNN

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("checkpoint") / "model.pt"
    torch.save(checkpoint_payload(LetterCNN()), path)
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """One finished :data:`TINY` run on the synthetic letters, named ``tiny``: 26 test images."""
    from lettercnn.training.config import TrainConfig
    from lettercnn.training.loop import fit

    return fit(TrainConfig(**TINY, runs_dir=str(tmp_path_factory.mktemp("runs")), name="tiny"))


@pytest.fixture(scope="session")
def tiny_model(tiny_run: RunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run exported to ONNX (parity checked on 64 rendered letters)."""
    from lettercnn.export import export_onnx

    return export_onnx(tiny_run.run_dir, tmp_path_factory.mktemp("model") / "letters.onnx", parity_samples=64).file
