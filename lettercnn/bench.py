"""The timing harness behind ``letters bench``: every inference path, side by side.

One row per path and thread count, all on the same weights and the same inputs::

    torch eager, our img2col Conv2d      (needs torch and a checkpoint)
    torch eager, nn.Conv2d               (same weights; needs torch and a checkpoint)
    onnxruntime fp32                     (the exported model)
    onnxruntime int8                     (its static QDQ twin, if there is one)

Each row: latency at batch 1 (median and 90th percentile over many runs, after a
warm-up), throughput at the large batch (images/s from the median), model size,
top-1 accuracy on labelled validation images, and the speed-up over the first row.
Beside them: large fp32 matrix products at the same thread count, taking turns with
the paths (the machine's GEMM speed, to say how close the network's GFLOP/s come to
it), and the cold start of ``letters recognize one.png`` as a subprocess (wall time
and peak RSS). The paths take turns too (see :func:`time_side_by_side`), so the ratios
hold on a machine whose speed drifts.

This module is on the runtime side and never imports torch or the training side: the
torch rows and the model's own validation split are lent by the training side
(:func:`lettercnn.training.evaluate.torch_paths`,
:func:`lettercnn.quantize.validation_inputs`), which the command line hands in when the
training extra is installed.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from lettercnn import calibration, preprocess
from lettercnn.data.imagetree import LabelledGlyphs, read_letter_tree
from lettercnn.metadata import META_CALIBRATION, decode
from lettercnn.runtime import DEFAULT_MODEL, EVAL_BATCH, int8_path, open_session

# Multiply-adds of one LetterCNN forward pass (5 convolutions and 2 linear layers);
# tests/test_model.py counts them from the model.
NETWORK_MACS = 93.1e6
DEFAULT_BATCHES = (1, 64)
DEFAULT_THREADS = (1, 2)
# Batch-1 timing: a warm-up, then this many timed calls per path.
WARMUP_RUNS = 20
MIN_RUNS = 200
# Large-batch timing: fewer, longer calls.
LARGE_WARMUP_RUNS = 2
LARGE_MIN_RUNS = 20
# The paths take turns this many times (see time_side_by_side).
ROUNDS = 10
# The reference GEMM: (n x n) @ (n x n) in fp32, best of a few runs.
MATMUL_N = 2048
MATMUL_OPSET = 18
MATMUL_IR = 8
MATMUL_ORT = "onnxruntime MatMul"
MATMUL_TORCH = "torch.mm"
COLD_START_RUNS = 9
P90 = 0.9

TORCH_IMG2COL = "torch eager, img2col Conv2d"
TORCH_NN = "torch eager, nn.Conv2d"
ORT_FP32 = "onnxruntime fp32"
ORT_INT8 = "onnxruntime int8"


class Latency(NamedTuple):
    """Milliseconds per call: the median and 90th percentile (typical), and the fastest (peak)."""

    median: float
    p90: float
    best: float


@dataclass
class Row:
    """One inference path at one thread count.

    Attributes:
        path: which path (see the module doc).
        threads: intra-op threads.
        latency_ms: batch size -> milliseconds per call.
        size_bytes: model file size (the checkpoint for torch rows).
        accuracy: top-1 accuracy on the validation images, 0..1; None if not measured.
        ece, nll: expected calibration error (15 bins) and negative log-likelihood on
            them, before (temperature 1) and after calibration (the fp32 model's
            temperature, from its metadata); None if not measured.
    """

    path: str
    threads: int
    latency_ms: dict[int, Latency] = field(default_factory=dict)
    size_bytes: int | None = None
    accuracy: float | None = None
    ece: tuple[float, float] | None = None
    nll: tuple[float, float] | None = None

    def images_per_s(self, batch: int) -> float | None:
        """Throughput at ``batch`` from the median latency."""
        timing = self.latency_ms.get(batch)
        return None if timing is None else batch / (timing.median / 1e3)

    def gflops(self, batch: int, *, peak: bool = False) -> float | None:
        """Network GFLOP/s at ``batch`` (2 FLOPs per multiply-add), from the median or the fastest call."""
        timing = self.latency_ms.get(batch)
        if timing is None:
            return None
        return batch * 2 * NETWORK_MACS / ((timing.best if peak else timing.median) / 1e3) / 1e9


@dataclass(frozen=True)
class ColdStart:
    """``letters recognize one.png`` in a fresh process.

    Attributes:
        wall_s: median wall time, seconds.
        peak_rss_mb: the largest peak resident set of the runs, MB.
        runs: how many runs.
    """

    wall_s: float
    peak_rss_mb: float
    runs: int


@dataclass
class BenchResult:
    """Everything ``letters bench`` measured.

    Attributes:
        rows: one per path and thread count, in table order.
        batches: the batch sizes timed.
        matmul_gflops: threads -> {engine: GFLOP/s} of the reference fp32 GEMMs (fastest run: the peak).
        cold_start: the recognize cold start, or None if skipped.
        validation: where the accuracy images came from ('' if none).
        notes: skipped paths and why.
    """

    rows: list[Row]
    batches: tuple[int, ...]
    matmul_gflops: dict[int, dict[str, float]]
    cold_start: ColdStart | None
    validation: str
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures, with throughput, GFLOP/s and ratios spelled out."""
        rows = []
        for row in self.rows:
            item = asdict(row)
            item["latency_ms"] = {str(b): timing._asdict() for b, timing in row.latency_ms.items()}
            item["images_per_s"] = {str(b): row.images_per_s(b) for b in row.latency_ms}
            item["gflops"] = {str(b): row.gflops(b) for b in row.latency_ms}
            item["peak_gflops"] = {str(b): row.gflops(b, peak=True) for b in row.latency_ms}
            item["speedup"] = {str(b): self.speedup(row, b) for b in row.latency_ms}
            rows.append(item)
        return {
            "rows": rows, "batches": list(self.batches), "network_macs": NETWORK_MACS,
            "matmul_gflops": {str(t): g for t, g in self.matmul_gflops.items()},
            "cold_start": None if self.cold_start is None else asdict(self.cold_start),
            "validation": self.validation, "notes": self.notes,
        }  # fmt: skip

    def baseline(self, threads: int) -> Row | None:
        """The first measured row at ``threads``: what the ratios are relative to."""
        return next((row for row in self.rows if row.threads == threads and row.latency_ms), None)

    def speedup(self, row: Row, batch: int) -> float | None:
        """How many times faster than the baseline row of the same thread count, at ``batch``."""
        base = self.baseline(row.threads)
        if base is None or batch not in base.latency_ms or batch not in row.latency_ms:
            return None
        return base.latency_ms[batch].median / row.latency_ms[batch].median


@dataclass(frozen=True)
class InferencePath:
    """One inference path ready to time: its name, ``predict(inputs) -> logits`` and size."""

    name: str
    predict: Callable[[np.ndarray], np.ndarray]
    size_bytes: int


# The torch eager paths of one checkpoint at a thread count: what the training side lends.
TorchPaths = Callable[[int], list[InferencePath]]


def time_side_by_side(paths: Sequence[InferencePath], batch: int, rounds: int = ROUNDS) -> list[Latency]:
    """Time every path at ``batch``, interleaved: each round gives each path its share of calls.

    A machine that slows down for a while (another tenant, a frequency change) then
    slows every path alike, so the ratios between paths hold even when the absolute
    times drift.
    """
    inputs = np.random.default_rng(0).standard_normal((batch, 1, 32, 32), dtype=np.float32)
    large = batch > 1
    warmup, runs = (LARGE_WARMUP_RUNS, LARGE_MIN_RUNS) if large else (WARMUP_RUNS, MIN_RUNS)
    per_round = max(1, -(-runs // rounds))  # ceil
    samples: list[list[float]] = [[] for _ in paths]
    for path in paths:
        for _ in range(warmup):
            path.predict(inputs)
    for _ in range(rounds):
        for path, times in zip(paths, samples):
            for _ in range(per_round):
                start = time.perf_counter()
                path.predict(inputs)
                times.append(time.perf_counter() - start)
    return [Latency(statistics.median(t) * 1e3, float(np.quantile(t, P90)) * 1e3, min(t) * 1e3) for t in samples]


@dataclass(frozen=True)
class Scores:
    """A path's accuracy and calibration on the validation images (see :class:`Row`)."""

    accuracy: float | None = None
    ece: tuple[float, float] | None = None
    nll: tuple[float, float] | None = None


def _scores(predict: Callable[[np.ndarray], np.ndarray], val: LabelledGlyphs | None, temperature: float) -> Scores:
    """Top-1 accuracy, ECE and NLL (at temperature 1 and ``temperature``) of ``predict`` on ``val``."""
    if val is None or not len(val.targets):
        return Scores()
    inputs = val.inputs()
    scores = np.concatenate([predict(inputs[i : i + EVAL_BATCH]) for i in range(0, len(inputs), EVAL_BATCH)])
    before, after = calibration.softmax(scores), calibration.softmax(scores, temperature)
    return Scores(
        float(np.mean(scores.argmax(axis=1) == val.targets)),
        (calibration.ece(before, val.targets), calibration.ece(after, val.targets)),
        (calibration.nll(before, val.targets), calibration.nll(after, val.targets)),
    )


def model_temperature(model: Path) -> float:
    """The calibration temperature an exported model carries (1 without one)."""
    fitted = decode(open_session(model, 1).get_modelmeta().custom_metadata_map).get(META_CALIBRATION)
    return float(fitted["temperature"]) if isinstance(fitted, dict) and "temperature" in fitted else 1.0


def onnx_path(name: str, model: Path, threads: int) -> InferencePath:
    """An onnxruntime model on ``threads`` intra-op threads."""
    session = open_session(model, threads)
    feed = session.get_inputs()[0].name

    def predict(inputs: np.ndarray) -> np.ndarray:
        return session.run(None, {feed: inputs})[0]  # no chunking or checks: what is timed is the call

    return InferencePath(name, predict, model.stat().st_size)


def measure(
    paths: Sequence[InferencePath], threads: int, batches: Sequence[int], val: LabelledGlyphs | None,
    references: Sequence[InferencePath] = (), temperature: float = 1.0,
) -> tuple[list[Row], dict[str, float]]:  # fmt: skip
    """Rows for ``paths`` on ``threads`` threads, and the reference GEMMs' peak GFLOP/s.

    The references (see :func:`reference_gemms`) take turns with the paths at the
    largest batch, so the network's GFLOP/s and theirs meet the machine in one state.
    """
    large = max(batches)
    timings = {batch: time_side_by_side([*paths, *(references if batch == large else ())], batch) for batch in batches}
    rows = []
    for i, path in enumerate(paths):
        scores = _scores(path.predict, val, temperature)
        latency = {batch: timings[batch][i] for batch in batches}
        rows.append(Row(path.name, threads, latency, path.size_bytes, scores.accuracy, scores.ece, scores.nll))
    flops = 2 * MATMUL_N**3
    gemm = {
        ref.name: flops / (timing.best / 1e3) / 1e9 for ref, timing in zip(references, timings[large][len(paths) :])
    }
    return rows, gemm


def reference_gemms(threads: int) -> list[InferencePath]:
    """Large fp32 matrix products to set the network's GFLOP/s against, on ``threads`` threads.

    onnxruntime's own MatMul (the GEMM its convolutions build on; the graph is built with
    the ``onnx`` package) and ``torch.mm`` (MKL/oneDNN), each where installed: the
    training extra brings both, a runtime-only install neither.
    """
    n = MATMUL_N
    rng = np.random.default_rng(0)
    a, b = (rng.random((n, n), dtype=np.float32) for _ in range(2))
    found = []
    try:
        from onnx import TensorProto, helper
    except ImportError:
        pass
    else:
        tensors = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in "abc"]
        graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul", tensors[:2], tensors[2:])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", MATMUL_OPSET)], ir_version=MATMUL_IR)
        session = open_session(model.SerializeToString(), threads)
        found.append(InferencePath(MATMUL_ORT, lambda _x: session.run(None, {"a": a, "b": b}), 0))
    if importlib.util.find_spec("torch") is not None:  # a reference, not a torch row: no training side
        import torch

        torch.set_num_threads(threads)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        found.append(InferencePath(MATMUL_TORCH, lambda _x: torch.mm(ta, tb), 0))
    return found


# Runs the command in a small child and prints its wall time and peak RSS: measured from
# this bench process, the child's ru_maxrss would include the bench's own memory, which
# Linux counts into a child that forks and execs from it.
_MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wall = time.perf_counter() - start
print(done.returncode, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def cold_start(image: Path, runs: int = COLD_START_RUNS) -> ColdStart:
    """Wall time and peak RSS of ``letters recognize image`` in a fresh process, as a user runs it.

    One untimed run comes first (the OS file cache, Python's bytecode cache), then
    ``runs`` timed ones; the median wall time and the largest peak RSS are kept.

    Raises:
        OSError: the command failed.
    """
    script = Path(sys.executable).with_name("letters")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "lettercnn"]
    command += ["recognize", str(image)]
    walls, peaks = [], []
    for _ in range(runs + 1):
        done = subprocess.run([sys.executable, "-c", _MEASURE, *command], capture_output=True, text=True, check=True)
        code, wall, peak_kb = done.stdout.split()
        if int(code) != 0:
            raise OSError(f"{' '.join(command)} failed with exit code {code}")
        walls.append(float(wall))
        peaks.append(int(peak_kb) / 1024)  # KB on Linux
    return ColdStart(statistics.median(walls[1:]), max(peaks[1:]), runs)


def sample_image(folder: Path) -> Path:
    """A one-letter PNG in ``folder`` to cold-start on: a clean R, drawn as the synthetic letters are."""
    import cv2

    from lettercnn.data.render import CHARS, hershey_templates, render_image  # numpy and OpenCV only

    template = hershey_templates(cv2.FONT_HERSHEY_SIMPLEX)[CHARS.index("R")]
    path = folder / "R.png"
    path.write_bytes(preprocess.encode_png(render_image(template, np.random.default_rng(0), distort=False)))
    return path


def folder_validation(root: Path) -> LabelledGlyphs:
    """Labelled images from a tree of letter folders (A/, a/, upper_a/ ...), read as training reads them.

    An image belongs to the letter of the top folder it is in: ``upper_b/x/003.png`` is a B.

    Raises:
        FileNotFoundError: no such folder.
        ValueError: a folder that names no letter, or no readable image.
    """
    tree = read_letter_tree(root)
    if not tree.samples:
        raise ValueError(f"no readable image in a letter folder (A/ .. Z/) under {root}")
    return tree.labelled(f"{len(tree.samples)} images under {root}")


def run_bench(
    model: Path | None = None,
    *,
    int8_model: Path | None = None,
    torch_paths: TorchPaths | None = None,
    validation: LabelledGlyphs | None = None,
    batches: Sequence[int] = DEFAULT_BATCHES,
    threads: Sequence[int] = DEFAULT_THREADS,
    data: Path | None = None,
    cold: bool = True,
    progress: Callable[[str], None] | None = None,
    notes: Sequence[str] = (),
) -> BenchResult:
    """Time every inference path at every thread count (see the module doc).

    Args:
        model: the fp32 ``.onnx``; default the shipped model.
        int8_model: its int8 twin; default ``<model>.int8.onnx`` if it exists.
        torch_paths: the torch eager paths of the same weights, per thread count (the
            training side's :func:`lettercnn.training.evaluate.torch_paths`); None: no torch rows.
        validation: labelled images for the accuracy column (the model's own validation
            split, from the training side); ``data`` takes precedence.
        batches: batch sizes to time; the first is the latency batch, the largest the throughput one.
        threads: thread counts, one table each.
        data: a tree of letter folders for the accuracy column.
        cold: also time ``letters recognize one.png`` in a fresh process.
        progress: called with a description as each step starts.
        notes: what the caller skipped and why (e.g. the torch rows), kept in the result.

    Returns:
        The figures.

    Raises:
        ValueError: bad batch or thread counts; an unusable model (ModelError).
        FileNotFoundError: a file or folder that does not exist.
    """
    step = progress or (lambda _text: None)
    batches, threads = _check_counts("batch", batches), _check_counts("threads", threads)
    model = model or DEFAULT_MODEL
    int8_model = int8_model or (int8_path(model) if int8_path(model).is_file() else None)
    notes = list(notes)
    if int8_model is None:
        notes.append(f"{ORT_INT8}: skipped, no {int8_path(model).name} (make one with `letters export --int8`)")
    step("validation images")
    val = folder_validation(data) if data is not None else validation
    temperature = model_temperature(model)
    rows: list[Row] = []
    gemm: dict[int, dict[str, float]] = {}
    for count in threads:
        paths = torch_paths(count) if torch_paths is not None else []
        paths.append(onnx_path(ORT_FP32, model, count))
        if int8_model is not None:
            paths.append(onnx_path(ORT_INT8, int8_model, count))
        step(f"{len(paths)} paths side by side, {count} thread(s)")
        measured, gemm[count] = measure(paths, count, batches, val, reference_gemms(count), temperature)
        rows += measured
    step("cold start")
    start = None
    if cold:
        with tempfile.TemporaryDirectory(prefix="lettercnn-bench-") as folder:
            start = cold_start(sample_image(Path(folder)))
    return BenchResult(rows, tuple(batches), gemm, start, val.source if val else "", notes)


def _check_counts(name: str, values: Sequence[int]) -> tuple[int, ...]:
    """Positive, de-duplicated, in the given order; ValueError otherwise."""
    if not values or any(value < 1 for value in values):
        raise ValueError(
            f"--{name} takes positive integers such as 1,64; got {','.join(map(str, values)) or 'nothing'}"
        )
    return tuple(dict.fromkeys(values))
