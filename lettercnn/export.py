"""Checkpoint -> one self-describing, plain ONNX file, or nothing.

The pipeline (timm's ``onnx_export``, Ultralytics' exporter)::

    check arguments -> rebuild the model from the checkpoint, twice:
        img2col (the training model) -> reference logits under inference_mode,
                                        on letters rendered by data/render.py
        nn.Conv2d twin, fused (BN folded) -> torch.onnx.export (dynamo, dynamic batch)
    -> the graph is plain (5 Conv; no Gather, BatchNormalization, Dropout)
    -> IR version lowered, metadata and producer written
    -> onnx.checker (full_check) -> onnxruntime on the same inputs
    -> parity: max |delta logit| <= atol and top-1 identical at batch 1, batch 64
       and over all parity inputs
    -> calibration: the exported model's logits on the run's validation letters and on
       held-out images of no letter -> temperature and "?" threshold into the metadata
       (lettercnn.calibration) -> write atomically; else ParityError, no file.

Metadata and the checker come before onnxruntime so the bytes that pass the parity
gate are exactly the bytes written. Metadata values are JSON strings
(:mod:`lettercnn.metadata`; the input spec is the one the checkpoint trained with); the
runtime reads them from the session :func:`lettercnn.runtime.open_session` opens.

torch, onnx and onnxruntime are imported inside the functions that need them.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lettercnn import __version__, calibration, metadata, preprocess
from lettercnn.calibration import MIN_COVERAGE, Calibration
from lettercnn.errors import ExportError, ModelError, ParityError
from lettercnn.fileio import write_bytes
from lettercnn.labels import LETTERS
from lettercnn.metadata import (
    META_CALIBRATION,
    encode,
)
from lettercnn.preprocess import InputSpec
from lettercnn.runtime import EVAL_BATCH, logits, open_session

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import onnx

    from lettercnn.nn.model import LetterCNN

log = logging.getLogger(__name__)

# 18 is the opset the dynamo exporter's torchlib is written in, so no version
# converter runs; onnxruntime reads it since 1.14, well inside our >=1.17 pin.
DEFAULT_OPSET = 18
# Lower opsets go through onnx's version converter; below 17 torch 2.14 silently
# returns opset 18 instead (measured), so we refuse them rather than mislabel the file.
MIN_OPSET = 17
# The parity gate: the default number of rendered inputs, the batch checked on its
# own besides batch 1, and the largest |delta logit| allowed: torch and onnxruntime
# sum float32 products in different orders, measured 2e-6 on a trained model's
# logits (|logit| up to 7); a wrong weight or op shows up far above 1e-4.
DEFAULT_PARITY_SAMPLES = 256
PARITY_BATCH = 64
DEFAULT_ATOL = 1e-4
# The example batch for tracing. With a batch of 1 the exporter specialises the
# batch dimension to 1 even when it is marked dynamic.
EXAMPLE_BATCH = 2
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"
ONNX_SUFFIX = ".onnx"
# Ops that must not appear: an im2col expansion (Gather/unfold), unfolded BN, dropout.
FORBIDDEN_OPS = frozenset({"Gather", "GatherElements", "GatherND", "Unfold", "Col2Im", "BatchNormalization", "Dropout"})
PRODUCER_NAME = "lettercnn"
GRAPH_NAME = "LetterCNN"
MODEL_DOC = (
    "LetterCNN letter classifier. In: 'input', float32 (batch, channels, size, size), one glyph "
    "preprocessed as metadata 'input' says. Out: 'logits' (batch, classes) in the order of metadata 'labels'."
)
# At least this many rendered images of no letter to measure the "?" threshold on.
CALIBRATION_MIN_NEGATIVES = 500
# Seed of the default parity inputs (rendered like the synthetic training letters).
RENDER_SEED = 0


@dataclass(frozen=True)
class Parity:
    """onnxruntime against the torch training model on one batch of inputs.

    Attributes:
        name: which batch ("batch 1", "batch 64", "all").
        samples: how many inputs.
        max_abs_diff: the largest |onnx logit - torch logit| over all inputs and classes.
        top1_agreement: fraction of inputs whose argmax is the same, 0..1.
    """

    name: str
    samples: int
    max_abs_diff: float
    top1_agreement: float

    def passed(self, atol: float) -> bool:
        """True when every top-1 agrees and no logit differs by more than ``atol``."""
        return self.top1_agreement == 1.0 and self.max_abs_diff <= atol

    def __str__(self) -> str:
        return f"{self.name} ({self.samples}): max |dlogit| {self.max_abs_diff:.2e}, top-1 {self.top1_agreement:.2%}"


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` wrote and measured.

    Attributes:
        file: the written .onnx file.
        checkpoint: the checkpoint it came from.
        size_bytes: size of the file.
        opset: ONNX opset of the default domain.
        ir_version: ONNX IR version written.
        op_counts: node count per op type, e.g. ``{"Conv": 5, "Gemm": 2, ...}``.
        parity: batch 1, batch 64 and all parity inputs, in that order.
        atol: the tolerance the parity gate used.
        seconds: wall time of the whole export.
        calibration: the temperature and "?" threshold written into the metadata, and
            what they do on held-out images; ``None`` when not calibrated.
        calibration_note: why it was not calibrated.
    """

    file: Path
    checkpoint: Path
    size_bytes: int
    opset: int
    ir_version: int
    op_counts: dict[str, int]
    parity: tuple[Parity, ...]
    atol: float
    seconds: float
    calibration: Calibration | None = None
    calibration_note: str | None = None

    @property
    def max_abs_diff(self) -> float:
        """The worst |delta logit| over every checked batch."""
        return max(p.max_abs_diff for p in self.parity)

    def summary(self) -> str:
        """One line: file, size, opset, parity, time."""
        return (
            f"{self.file} ({self.size_bytes / 1e6:.1f} MB, opset {self.opset}, IR {self.ir_version}): "
            f"parity max |dlogit| {self.max_abs_diff:.1e} <= {self.atol:g}, top-1 identical "
            f"on {self.parity[-1].samples} inputs; {self.seconds:.1f} s"
        )


def export_onnx(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    inputs: np.ndarray | None = None,
    parity_samples: int = DEFAULT_PARITY_SAMPLES,
    atol: float = DEFAULT_ATOL,
    calibrate: bool = True,
    min_confidence: float | None = None,
    coverage: float = MIN_COVERAGE,
) -> ExportReport:
    """Export a checkpoint to one self-contained, plain ONNX file that passed parity.

    Args:
        checkpoint: a ``.pt`` written by training, or a run folder (its ``best.pt``).
        out: the ``.onnx`` file to write (its folder is created). An existing file is
            replaced only when the export succeeds.
        opset: ONNX opset of the default domain, >= :data:`MIN_OPSET`.
        inputs: preprocessed parity inputs, float32 ``(N, 1, 32, 32)`` with
            ``N >= 64`` (e.g. a validation split), all of them used. None: render
            ``parity_samples`` letters (:func:`render_parity_inputs`).
        parity_samples: how many letters to render when ``inputs`` is None (>= 64).
        atol: the largest |onnx logit - torch logit| allowed.
        calibrate: fit the temperature on the run's validation letters and choose the
            "?" threshold (:mod:`lettercnn.calibration`); written into the metadata.
        min_confidence: the "?" threshold to record instead of the chosen one.
        coverage: the chosen threshold keeps this share of the validation letters answered.

    Returns:
        What was written and measured (see :class:`ExportReport`).

    Raises:
        FileNotFoundError: no checkpoint at ``checkpoint``.
        ValueError: a foreign checkpoint, a bad ``out`` path or bad options.
        ExportError: the graph is not plain, or onnx/onnxruntime reject it.
        ParityError: onnxruntime disagrees with the torch model; nothing is written.
    """
    from lettercnn.nn.checkpoint import input_spec, load_checkpoint, resolve_checkpoint

    started = time.perf_counter()
    out_file = _check_out(out)
    _check_options(opset, parity_samples, atol)
    checkpoint_file = resolve_checkpoint(checkpoint)
    payload = load_checkpoint(checkpoint_file)
    spec = input_spec(payload)
    samples = render_parity_inputs(parity_samples, spec=spec) if inputs is None else _check_inputs(inputs, spec)
    reference = _reference_logits(_rebuild(payload, "img2col", checkpoint_file), samples)
    twin = _rebuild(payload, "torch", checkpoint_file).fuse()
    proto = _to_onnx(twin, opset, spec)
    op_counts = _check_plain(proto, twin, opset)
    stamped = metadata.build(payload, checkpoint_file, opset)
    _stamp(proto, stamped)
    _check_model(proto)
    data = proto.SerializeToString()
    parity = _check_parity(data, samples, reference, atol)
    calibration, note = None, "not asked for (--no-calibrate)"
    if calibrate and not payload.get("train_config"):
        note = "the checkpoint does not say what data it trained on, so there is no validation split"
    elif calibrate:
        calibration = calibrate_model(data, payload, spec, min_confidence=min_confidence, coverage=coverage)
        _stamp(proto, stamped | {META_CALIBRATION: calibration.to_dict()})
        data = proto.SerializeToString()  # only the metadata changed: the graph is the one that passed parity
    if calibration is None:
        log.info("not calibrated: %s", note)
    write_bytes(out_file, data)
    report = ExportReport(
        file=out_file,
        checkpoint=checkpoint_file,
        size_bytes=len(data),
        opset=opset,
        ir_version=proto.ir_version,
        op_counts=op_counts,
        parity=parity,
        atol=atol,
        seconds=time.perf_counter() - started,
        calibration=calibration,
        calibration_note=None if calibration is not None else note,
    )
    log.info("exported %s", report.summary())
    return report


def calibrate_model(
    data: bytes,
    payload: Mapping[str, Any],
    spec: InputSpec,
    *,
    min_confidence: float | None = None,
    coverage: float = MIN_COVERAGE,
) -> Calibration:
    """Temperature and "?" threshold for an exported model, from held-out images.

    The letters are the run's validation split (:func:`lettercnn.training.evaluate.held_out`:
    never trained on); the images of no letter are rendered from a stream training
    never draws (``val-negatives``). The model's own onnxruntime logits are used, so
    the numbers are those of the file written.

    Raises:
        ValueError: the run has no validation letters to calibrate on.
    """
    from lettercnn.data import synthetic_negatives
    from lettercnn.training.evaluate import held_out

    config = payload.get("train_config") or {}
    val = held_out("val", config)
    if not len(val.targets):
        raise ValueError(f"no validation letters to calibrate on ({val.source}); export with --no-calibrate")
    count = max(CALIBRATION_MIN_NEGATIVES, len(val.targets) // 5)
    negatives = synthetic_negatives(
        count, seed=int(config.get("seed", 0)), split="val-negatives", fonts_dir=config.get("fonts_dir")
    )
    session = open_session(data, None)
    letter_logits = logits(session, val.inputs(spec), batch=EVAL_BATCH)
    other_logits = logits(session, preprocess.normalize(negatives.glyphs, spec), batch=EVAL_BATCH)
    source = f"{val.source}; {count} rendered images of no letter"
    pairs = calibration.look_alike_pairs(LETTERS)
    fitted = calibration.calibrate(
        letter_logits, val.targets, other_logits, min_coverage=coverage, pairs=pairs, source=source
    )
    if min_confidence is not None:
        fitted = calibration.calibrate(
            letter_logits,
            val.targets,
            other_logits,
            threshold=min_confidence,
            pairs=pairs,
            source=source + "; threshold given",
        )
    return fitted


def _check_out(out: str | os.PathLike[str]) -> Path:
    """The output path, if it can be an .onnx file.

    Raises:
        ValueError: a folder, or a suffix other than ``.onnx``.
    """
    file = Path(out)
    if file.is_dir():
        raise ValueError(f"output {file} is a folder; give a file name ending in {ONNX_SUFFIX}")
    if file.suffix.lower() != ONNX_SUFFIX:
        raise ValueError(f"output {file} must end in {ONNX_SUFFIX}, got {file.suffix or 'no suffix'!r}")
    return file


def _check_options(opset: int, parity_samples: int, atol: float) -> None:
    """Validate the numeric options.

    Raises:
        ValueError: naming the bad value and the accepted range.
    """
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an integer in {MIN_OPSET}..{newest}, got {opset!r}")
    if isinstance(parity_samples, bool) or not isinstance(parity_samples, int) or parity_samples < PARITY_BATCH:
        raise ValueError(f"parity_samples must be an integer >= {PARITY_BATCH}, got {parity_samples!r}")
    if not isinstance(atol, (int, float)) or not math.isfinite(atol) or atol < 0:
        raise ValueError(f"atol must be a finite number >= 0, got {atol!r}")


def _check_inputs(inputs: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Caller-given parity inputs as contiguous float32 ``(N, C, H, W)``, as ``spec`` shapes them.

    Raises:
        ValueError: wrong shape, fewer than :data:`PARITY_BATCH` images, or non-finite values.
    """
    expected = (spec.channels, spec.size, spec.size)
    array = np.ascontiguousarray(inputs, dtype=np.float32)
    if array.ndim != 4 or array.shape[1:] != expected:
        raise ValueError(f"inputs must have shape (N, {', '.join(map(str, expected))}), got {array.shape}")
    if len(array) < PARITY_BATCH:
        raise ValueError(
            f"inputs must hold at least {PARITY_BATCH} images (parity runs at batch {PARITY_BATCH}), got {len(array)}"
        )
    if not np.isfinite(array).all():
        raise ValueError("inputs hold NaN or infinite values")
    return array


def render_parity_inputs(
    count: int = DEFAULT_PARITY_SAMPLES, seed: int = RENDER_SEED, *, spec: InputSpec = preprocess.DEFAULT_SPEC
) -> np.ndarray:
    """Letters rendered as the synthetic training set draws them, through the one preprocessing.

    Real inputs, not noise: the parity gate should see the activations a model sees
    in the field. Sample ``i`` is ``LETTERS[i % 26]`` in a random case and font of the
    synthetic set's bank, drawn like handwriting and photographed
    (:func:`lettercnn.data.render.render_image`); the same ``seed`` gives the same set.

    Args:
        count: how many images.
        seed: seeds the random choices.
        spec: the model's input spec.

    Returns:
        float32 ``(count, channels, size, size)``, as :func:`lettercnn.preprocess.to_input` makes them.
    """
    from lettercnn.data.render import CHARS, load_font_bank, render_image

    bank = load_font_bank()
    rng = np.random.default_rng(seed)
    out = np.empty((count, spec.channels, spec.size, spec.size), dtype=np.float32)
    for index in range(count):
        letter = LETTERS[index % len(LETTERS)]
        char = letter.lower() if rng.random() < 0.5 else letter
        template = bank.templates[int(rng.integers(len(bank.names)))][CHARS.index(char)]
        glyph = preprocess.canonical(render_image(template, rng), spec=spec)
        while not glyph.any():  # a photo too faint to find the letter in: draw it again
            glyph = preprocess.canonical(render_image(template, rng), spec=spec)
        out[index] = preprocess.normalize(glyph, spec)
    return out


def _rebuild(payload: Mapping[str, Any], conv: str, checkpoint_file: Path) -> LetterCNN:
    """The checkpoint's model with the given convolution, weights loaded strictly, in eval mode.

    Raises:
        ValueError: the config or state dict does not build a LetterCNN.
    """
    from lettercnn.nn.model import LetterCNN

    return LetterCNN.from_payload(payload, checkpoint_file, conv=conv).eval()  # type: ignore[arg-type]


def _reference_logits(model: LetterCNN, samples: np.ndarray) -> np.ndarray:
    """The model's logits for ``samples``, float32 ``(N, classes)``, under inference_mode."""
    import torch

    chunks = []
    with torch.inference_mode():
        for start in range(0, len(samples), EVAL_BATCH):
            chunks.append(model(torch.from_numpy(samples[start : start + EVAL_BATCH])).numpy())
    return np.concatenate(chunks)


def _to_onnx(model: LetterCNN, opset: int, spec: InputSpec) -> onnx.ModelProto:
    """Export the nn.Conv2d twin with the dynamo exporter, batch dimension dynamic.

    Why the twin and not the img2col model: the dynamo exporter ignores a ``symbolic()``
    on our autograd Function and traces through ``F.unfold``, giving a Gather-based
    im2col that runs ~7x slower in onnxruntime and blocks Conv+BN+ReLU fusion. The twin
    has the same parameter names, loads the same state dict strictly and exports as
    standard ``Conv`` nodes; the parity gate checks it against the img2col model.
    """
    import torch

    example = torch.zeros(EXAMPLE_BATCH, spec.channels, spec.size, spec.size)
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        opset_version=opset,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: torch.export.Dim(BATCH_DIM)},),
        optimize=True,
        external_data=False,  # one self-contained file (2.4 M parameters, ~10 MB)
        verbose=False,
    )
    return program.model_proto


def _check_plain(proto: onnx.ModelProto, model: LetterCNN, opset: int) -> dict[str, int]:
    """Node counts per op type, after checking the graph is the one we ship.

    Raises:
        ExportError: a forbidden op, a foreign op domain, a Conv count other than the
            model's nn.Conv2d count, another opset than asked, or a fixed batch size.
    """
    from torch import nn

    counts = dict(sorted(Counter(node.op_type for node in proto.graph.node).items()))
    forbidden = sorted(FORBIDDEN_OPS & counts.keys())
    foreign = sorted({node.domain for node in proto.graph.node} - {"", "ai.onnx"})
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    written = {entry.domain: entry.version for entry in proto.opset_import}.get("")
    batch = proto.graph.input[0].type.tensor_type.shape.dim[0]
    problems = []
    if forbidden or foreign:
        problems.append(f"ops {forbidden + foreign} (expected none of {sorted(FORBIDDEN_OPS)})")
    if counts.get("Conv", 0) != convs:
        problems.append(f"{counts.get('Conv', 0)} Conv nodes for the model's {convs} convolutions")
    if written != opset:
        problems.append(f"opset {written} instead of the requested {opset}")
    if not batch.dim_param:
        problems.append(f"a fixed batch size of {batch.dim_value} instead of a dynamic one")
    if problems:
        raise ExportError(f"the exported graph is not plain: {'; '.join(problems)}; ops: {counts}")
    return counts


def _check_model(proto: onnx.ModelProto) -> None:
    """``onnx.checker`` with full shape inference.

    Raises:
        ExportError: the checker rejects the model.
    """
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as err:
        raise ExportError(f"onnx.checker rejects the exported model: {err}") from None


def _stamp(proto: onnx.ModelProto, metadata: Mapping[str, Any]) -> None:
    """Write metadata, producer and description; lower the IR version, in place.

    The IR version becomes the lowest the opset allows (IR 8 for opset 18): torch
    writes IR 10, which onnxruntime reads only from 1.18 on, while the graph uses
    nothing newer than IR 8 (float32 tensors, no functions, no 4-bit types), so the
    lower number loses nothing and keeps the file readable by onnxruntime 1.14+.
    """
    import onnx

    lowest = onnx.helper.find_min_ir_version_for(list(proto.opset_import), ignore_unknown=True)
    proto.ir_version = min(proto.ir_version, lowest)
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, encode(metadata))
    proto.producer_name = PRODUCER_NAME
    proto.producer_version = __version__
    proto.doc_string = MODEL_DOC
    proto.graph.name = GRAPH_NAME


def _check_parity(data: bytes, samples: np.ndarray, reference: np.ndarray, atol: float) -> tuple[Parity, ...]:
    """Run the serialized model in onnxruntime and compare with the torch logits.

    Raises:
        ExportError: onnxruntime cannot load the model.
        ParityError: a batch differs by more than ``atol`` or in a top-1 class.
    """
    import onnxruntime as ort

    try:
        session = open_session(data)
    except ModelError as err:
        raise ExportError(f"onnxruntime {ort.__version__} cannot load the exported model: {err}") from None
    parity = tuple(
        _compare(name, logits(session, samples[:count], name="the exported model"), reference[:count])
        for name, count in (("batch 1", 1), (f"batch {PARITY_BATCH}", PARITY_BATCH), ("all", len(samples)))
    )
    for figures in parity:
        log.info("parity %s", figures)
    if not all(figures.passed(atol) for figures in parity):
        raise ParityError(
            f"onnxruntime disagrees with the torch training model (img2col) beyond atol {atol:g} "
            f"or in top-1: {'; '.join(map(str, parity))}. Nothing was written.",
            parity,
        )
    return parity


def _compare(name: str, got: np.ndarray, want: np.ndarray) -> Parity:
    """Parity figures of onnxruntime logits ``got`` against torch logits ``want``."""
    diff = float(np.max(np.abs(got.astype(np.float64) - want)))
    agreement = float(np.mean(got.argmax(axis=1) == want.argmax(axis=1)))
    return Parity(name, len(want), diff if math.isfinite(diff) else math.inf, agreement)
