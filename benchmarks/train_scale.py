"""Training images/s in one process and in several: the figures README's "Training at scale" asks for.

Runs the same short `letters train` (synthetic letters) as: 1 process with all the
usable cores as threads; ``--nproc 2`` on the CPU (the cores shared out); and, where
torch sees CUDA, ``--nproc 1 --device cuda`` and ``--nproc G`` over the G GPUs. Prints
each run's images/s (the mean over its epochs after the first, which warms up) and one
line to paste into an issue. Run on an otherwise idle machine:

    python benchmarks/train_scale.py [--per-letter 100] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from lettercnn.runs import HISTORY_FILE
from lettercnn.threads import usable_cores

# A run that takes longer than this is stopped (a hang is a result too).
RUN_TIMEOUT_S = 1800


def images_per_s(runs_dir: Path, name: str, args: list[str]) -> float:
    """Run ``letters train ARGS --name NAME`` and return its images/s (epochs after the first)."""
    command = [sys.executable, "-m", "lettercnn", "train", "--runs-dir", str(runs_dir), "--name", name, *args]
    print("$", " ".join(command[2:]), flush=True)
    subprocess.run(command, check=True, timeout=RUN_TIMEOUT_S, stdout=subprocess.DEVNULL)
    history = json.loads((runs_dir / name / HISTORY_FILE).read_text())
    speeds = [record["images_per_s"] for record in history]
    return statistics.mean(speeds[1:] or speeds)


def threads(count: int) -> str:
    """'1 thread', '2 threads'."""
    return f"{count} thread{'s' if count != 1 else ''}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-letter", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3)
    options = parser.parse_args()
    common = ["--per-letter", str(options.per_letter), "--epochs", str(options.epochs)]
    cores = usable_cores()
    shared = max(1, cores // 2)
    plans = {
        f"cpu 1 process x {threads(cores)}": [*common, "--device", "cpu", "--threads", str(cores)],
        f"cpu 2 processes x {threads(shared)}": [*common, "--device", "cpu", "--nproc", "2"],
    }
    gpus = torch.cuda.device_count()
    if gpus:
        plans["cuda 1 process"] = [*common, "--device", "cuda", "--nproc", "1"]
        if gpus > 1:
            plans[f"cuda {gpus} processes"] = [*common, "--device", "cuda", "--nproc", str(gpus)]
    with tempfile.TemporaryDirectory() as runs:
        results = {label: images_per_s(Path(runs), f"run{i}", args) for i, (label, args) in enumerate(plans.items())}
    for label, speed in results.items():
        print(f"{label:>32}: {speed:7.0f} images/s")
    device = torch.cuda.get_device_name(0) if gpus else platform.processor() or platform.machine()
    shown = "; ".join(f"{label} {speed:.0f}" for label, speed in results.items())
    print(f"train_scale: {device}, {cores} cores, torch {torch.__version__}, per-letter {options.per_letter}: {shown}")


if __name__ == "__main__":
    main()
