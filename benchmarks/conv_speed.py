"""Training-step speed of LetterCNN: our img2col Conv2d vs torch.nn.Conv2d, same weights.

Prints images/s of a full training step (forward, loss, backward, Adam step) at
batch 64 for both, measured alternately in one run, and their ratio. Run:

    python benchmarks/conv_speed.py [--batch 64] [--steps 20] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lettercnn.nn import LetterCNN


def step_seconds(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> list[float]:
    """Wall time of each of ``steps`` training steps."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two models")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ours = LetterCNN(conv="img2col").train()
    theirs = LetterCNN(conv="torch").train()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(args.batch, 1, 32, 32)
    y = torch.randint(0, 26, (args.batch,))
    for model in (ours, theirs):  # warm-up: allocator, oneDNN primitive caches
        step_seconds(model, x, y, 3)
    results: dict[str, list[float]] = {"img2col Conv2d": [], "nn.Conv2d": []}
    for _ in range(args.rounds):  # alternate so drift on a noisy machine hits both
        results["img2col Conv2d"] += step_seconds(ours, x, y, args.steps)
        results["nn.Conv2d"] += step_seconds(theirs, x, y, args.steps)
    speed = {name: args.batch / statistics.median(times) for name, times in results.items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    for name, ips in speed.items():
        print(f"  {name:16s} {ips:8.1f} images/s (median of {len(results[name])} steps)")
    print(f"  ratio img2col / nn.Conv2d = {speed['img2col Conv2d'] / speed['nn.Conv2d']:.2f}x")


if __name__ == "__main__":
    main()
