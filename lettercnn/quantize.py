"""fp32 ONNX -> int8 ONNX (static QDQ, per-channel), or nothing.

The pipeline::

    fp32 .onnx (from lettercnn.export)
    -> quant_pre_process (shape inference, graph clean-up)
    -> quantize_static: QDQ format, uint8 activations, int8 per-channel weights,
       MinMax calibration on a few hundred preprocessed letters; the first
       convolution stays fp32 (see KEEP_FP32)
    -> the fp32 file's metadata, plus how it was quantised
    -> fp32 and int8 scored on a validation split: accuracy and top-1 agreement
    -> accuracy drop <= max_drop: written atomically; else AccuracyDropError, no file.

Why static QDQ: on x86 with VNNI (and ARM with dot-product instructions) onnxruntime
runs QDQ Conv as integer convolutions. ``quantize_dynamic`` only quantises MatMul/Gemm
on the fly and leaves the convolutions (almost all of the 93 M multiply-adds) in
fp32 plus conversion work, so it runs slower than fp32 here.

The validation split is the checkpoint run's own when its training data can be
rebuilt (the synthetic set always can), so the figures say what the model lost on
data it was tuned on, not on something else. This module is on the training side:
onnxruntime's quantisation tools need the ``onnx`` package.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lettercnn import preprocess
from lettercnn.data.imagetree import LabelledGlyphs
from lettercnn.errors import AccuracyDropError
from lettercnn.fileio import write_bytes
from lettercnn.metadata import META_INPUT, META_TRAIN, decode, encode
from lettercnn.runtime import int8_path, logits, open_session

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import onnx

log = logging.getLogger(__name__)

META_QUANTIZATION = "quantization"
# The first convolution (1 input channel, 5x5: 25 multiply-adds per output, under 1% of
# the network's) stays fp32: as a QLinearConv it ran slower than fp32 (5.6 against 1.9 ms
# at batch 64, one thread), and the input keeps its full precision. Measured: int8 with it
# excluded 3.4x faster than fp32 at batch 64, with it quantised 2.9x.
KEEP_FP32 = "the convolution that reads the input"
# Refuse an int8 model that loses more accuracy than this (points, i.e. 0.5 = 0.5%).
MAX_ACCURACY_DROP = 0.5
# Calibration: a few hundred letters is what MinMax needs; more only costs time.
CALIB_PER_LETTER = 12
CALIB_MAX_IMAGES = 512
CALIB_BATCH = 64
# The seed of a model whose metadata names none (the default run's).
FALLBACK_SEED = 0
# Seeds are offset so calibration images are never the validation images.
CALIB_SEED_OFFSET = 1


@dataclass(frozen=True)
class QuantReport:
    """What :func:`quantize_int8` measured (and wrote, unless it refused).

    Attributes:
        file: the int8 ``.onnx`` (not written when refused).
        fp32_file: the model it came from.
        fp32_size: its size in bytes.
        int8_size: the int8 model's size in bytes.
        calibration: how many images calibrated it, and from where.
        validation: where the validation images came from.
        val_images: how many.
        fp32_accuracy: fp32 accuracy on them, 0..1.
        int8_accuracy: int8 accuracy on them, 0..1.
        agreement: fraction of images whose top-1 is the same in both, 0..1.
        seconds: wall time.
    """

    file: Path
    fp32_file: Path
    fp32_size: int
    int8_size: int
    calibration: str
    validation: str
    val_images: int
    fp32_accuracy: float
    int8_accuracy: float
    agreement: float
    seconds: float

    @property
    def drop_points(self) -> float:
        """fp32 minus int8 accuracy, in percentage points."""
        return 100.0 * (self.fp32_accuracy - self.int8_accuracy)

    def summary(self) -> str:
        """One line: file, sizes, accuracies, agreement."""
        return (
            f"{self.file} ({self.int8_size / 1e6:.1f} MB, {self.int8_size / self.fp32_size:.0%} of fp32): "
            f"accuracy {self.int8_accuracy:.2%} vs fp32 {self.fp32_accuracy:.2%} "
            f"({-self.drop_points:+.2f} points), top-1 agreement {self.agreement:.2%} "
            f"on {self.val_images} validation images; {self.seconds:.1f} s"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "file": str(self.file), "fp32_file": str(self.fp32_file), "fp32_size": self.fp32_size,
            "int8_size": self.int8_size, "calibration": self.calibration, "validation": self.validation,
            "val_images": self.val_images, "fp32_accuracy": self.fp32_accuracy, "int8_accuracy": self.int8_accuracy,
            "drop_points": self.drop_points, "agreement": self.agreement, "seconds": self.seconds,
        }  # fmt: skip


def quantize_int8(
    fp32_file: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    calib: str | os.PathLike[str] | None = None,
    validation: LabelledGlyphs | None = None,
    max_drop: float = MAX_ACCURACY_DROP,
    progress: Callable[[str], None] | None = None,
) -> QuantReport:
    """Quantise an exported fp32 model to int8 and keep it only if it stays accurate.

    Args:
        fp32_file: an ``.onnx`` written by :func:`lettercnn.export.export_onnx`.
        out: the int8 file; default ``<fp32 stem>.int8.onnx`` beside it.
        calib: a folder of images to calibrate on (any images, searched recursively;
            at most :data:`CALIB_MAX_IMAGES`). None: synthetic letters.
        validation: the images to score both models on. None: the model's own
            validation split, rebuilt from its training metadata (see module doc).
        max_drop: the largest accuracy loss allowed, in percentage points.
        progress: called with the name of each step as it starts.

    Returns:
        The figures (see :class:`QuantReport`).

    Raises:
        FileNotFoundError: no fp32 model, or no calibration folder.
        ValueError: not one of our models, or no usable calibration image.
        AccuracyDropError: int8 lost more than ``max_drop`` points; nothing written.
    """
    import onnx

    started = time.perf_counter()
    step = progress or (lambda _name: None)
    source = Path(fp32_file)
    if not source.is_file():
        raise FileNotFoundError(f"model not found: {source}")
    out_file = Path(out) if out is not None else int8_path(source)
    fp32_bytes = source.read_bytes()
    proto = _load_proto(fp32_bytes, source)
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    step("calibration images")
    calib_inputs, calib_source = calibration_inputs(calib, metadata)
    step("quantising")
    int8_proto = _quantize(proto, calib_inputs)
    method = {"format": "QDQ", "activations": "uint8", "weights": "int8 per channel", "fp32": KEEP_FP32,
              "calibration": calib_source}  # fmt: skip
    int8_proto.metadata_props.clear()
    onnx.helper.set_model_props(int8_proto, {**metadata, **encode({META_QUANTIZATION: method})})
    int8_bytes = int8_proto.SerializeToString()
    step("scoring fp32 and int8")
    val = validation or validation_inputs(metadata)
    val_inputs = val.inputs()
    fp32_pred, int8_pred = _predict(fp32_bytes, val_inputs), _predict(int8_bytes, val_inputs)
    report = QuantReport(
        file=out_file, fp32_file=source, fp32_size=len(fp32_bytes), int8_size=len(int8_bytes),
        calibration=f"{len(calib_inputs)} images: {calib_source}", validation=val.source, val_images=len(val.targets),
        fp32_accuracy=float(np.mean(fp32_pred == val.targets)), int8_accuracy=float(np.mean(int8_pred == val.targets)),
        agreement=float(np.mean(fp32_pred == int8_pred)), seconds=time.perf_counter() - started,
    )  # fmt: skip
    if report.drop_points > max_drop:
        raise AccuracyDropError(
            f"int8 model refused: accuracy {report.int8_accuracy:.2%} vs fp32 {report.fp32_accuracy:.2%} "
            f"is a drop of {report.drop_points:.2f} points (> {max_drop:g}); nothing written to {out_file}",
            report,
        )
    onnx.checker.check_model(int8_proto)
    write_bytes(out_file, int8_bytes)
    log.info("quantised %s", report.summary())
    return report


def _load_proto(data: bytes, path: Path) -> onnx.ModelProto:
    """The ONNX model in ``data``; ValueError if it is not ONNX or not ours."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load_model_from_string(data)
    except DecodeError as error:
        raise ValueError(f"{path} is not an ONNX model: {error}") from error
    keys = {prop.key for prop in proto.metadata_props}
    if META_INPUT not in keys:
        raise ValueError(f"{path} has no lettercnn metadata; quantise a model written by `letters export`")
    if any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in proto.graph.node):
        raise ValueError(f"{path} is already quantised")
    return proto


def _quantize(proto: onnx.ModelProto, calib_inputs: np.ndarray) -> onnx.ModelProto:
    """Static QDQ quantisation of ``proto`` calibrated on ``calib_inputs``."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        """The calibration inputs in batches, as quantize_static reads them."""

        def __init__(self, input_name: str) -> None:
            starts = range(0, len(calib_inputs), CALIB_BATCH)
            self.feeds = iter([{input_name: calib_inputs[start : start + CALIB_BATCH]} for start in starts])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    reader = Reader(proto.graph.input[0].name)
    with tempfile.TemporaryDirectory(prefix="lettercnn-int8-") as tmp:
        fp32, prepared, quantized = (Path(tmp) / name for name in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        onnx.save_model(proto, fp32)
        quant_pre_process(fp32, prepared, skip_symbolic_shape=True)
        quantize_static(
            prepared,
            quantized,
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=_input_convs(onnx.load_model(prepared)),
        )
        return onnx.load_model(quantized)


def _input_convs(proto: onnx.ModelProto) -> list[str]:
    """The Conv nodes that read the graph input: they stay fp32 (see :data:`KEEP_FP32`)."""
    inputs = {value.name for value in proto.graph.input}
    return [node.name for node in proto.graph.node if node.op_type == "Conv" and node.input[0] in inputs]


def _predict(model: bytes, inputs: np.ndarray) -> np.ndarray:
    """Top-1 class of each input under onnxruntime."""
    return logits(open_session(model), inputs).argmax(axis=1)


def _train_config(metadata: dict[str, str]) -> dict[str, Any]:
    """The training config recorded in a model's metadata ({} if none)."""
    train = decode(metadata).get(META_TRAIN)
    config = train.get("config") if isinstance(train, dict) else None
    return config if isinstance(config, dict) else {}


def calibration_inputs(calib: str | os.PathLike[str] | None, metadata: dict[str, str]) -> tuple[np.ndarray, str]:
    """Preprocessed calibration inputs, float32 (N, 1, 32, 32), and where they came from.

    Args:
        calib: a folder of images, or None for synthetic letters rendered from a seed
            other than the validation split's.
        metadata: the model's metadata (for the synthetic seed and fonts).

    Raises:
        FileNotFoundError: ``calib`` is not a folder.
        ValueError: ``calib`` holds no readable image.
    """
    if calib is None:
        config = _train_config(metadata)
        seed = int(config.get("seed", FALLBACK_SEED)) + CALIB_SEED_OFFSET
        from lettercnn.data import SyntheticLetters

        glyphs = SyntheticLetters(CALIB_PER_LETTER, seed=seed, split="train", fonts_dir=config.get("fonts_dir"))
        return preprocess.normalize(glyphs.glyphs), f"synthetic letters ({CALIB_PER_LETTER} per letter, seed {seed})"
    return _folder_inputs(Path(calib))


def _folder_inputs(folder: Path) -> tuple[np.ndarray, str]:
    """Every readable image under ``folder`` (at most CALIB_MAX_IMAGES, evenly picked), preprocessed."""
    from lettercnn.inputs import find_images

    if not folder.is_dir():
        raise FileNotFoundError(f"calibration folder not found: {folder}")
    files, _missing = find_images([folder])
    if len(files) > CALIB_MAX_IMAGES:
        files = [files[i] for i in np.linspace(0, len(files) - 1, CALIB_MAX_IMAGES).astype(int)]
    inputs, skipped = [], 0
    for file in files:
        try:
            inputs.append(preprocess.to_input(file))
        except (ValueError, OSError) as error:
            skipped += 1
            log.warning("calibration: skipped %s: %s", file, error)
    if not inputs:
        raise ValueError(f"no readable image in calibration folder {folder}")
    note = f", {skipped} unreadable skipped" if skipped else ""
    return np.stack(inputs).astype(np.float32), f"{folder}{note}"


def validation_inputs(metadata: dict[str, str]) -> LabelledGlyphs:
    """The validation split the model's run used, or the default run's if it cannot be rebuilt.

    A run on an image folder that still exists gets that folder's validation split; a
    synthetic run gets its synthetic validation split; anything else the validation
    split of the default synthetic run (40 per letter, seed 0). See
    :func:`lettercnn.training.evaluate.held_out`.
    """
    from lettercnn.training.config import TrainConfig
    from lettercnn.training.evaluate import held_out

    config = _train_config(metadata)
    data = config.get("data")
    synthetic = bool(config) and not data and int(config.get("per_letter", 0)) > 0
    if synthetic or (data and Path(data).is_dir()):
        val = held_out("val", config)
        if len(val.targets):
            return val
    val = held_out("val", TrainConfig().to_dict())
    return dataclasses.replace(val, source=val.source.replace("the run's", "the default run's"))
