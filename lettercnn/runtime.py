"""Recognition with onnxruntime: numpy, OpenCV and an .onnx file; never torch.

    >>> from lettercnn.runtime import Recognizer
    >>> recognizer = Recognizer()               # the model shipped in the package
    >>> recognizer.predict("photo.png")         # Prediction(letter='R', confidence=0.98, ...)

The model file describes itself (docs/design.md, contract 2): its labels and its input spec
(size, polarity, mean/std, margin) come from its metadata, so the runtime needs
nothing but the file.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lettercnn import preprocess
from lettercnn.calibration import answered, look_alike_pairs, softmax
from lettercnn.errors import ModelError
from lettercnn.labels import LETTERS
from lettercnn.metadata import META_CALIBRATION, META_INPUT, META_LABELS, REQUIRED_KEYS, decode
from lettercnn.preprocess import InputSpec, Threshold

ASSETS = Path(__file__).parent / "assets"
DEFAULT_MODEL = ASSETS / "lettercnn.onnx"
# The int8 twin of a model sits beside it: model.onnx -> model.int8.onnx (`letters export --int8`).
INT8_SUFFIX = ".int8.onnx"
UNKNOWN = "?"
# Why an answer is "?": preprocessing found no glyph (a blank or flat image, ink no
# stronger than the page's noise), or the model's top probability is below the
# threshold (a sign, a scribble, several letters, a letter cut off, or too unsure).
NO_GLYPH = "no glyph found"
NOT_SURE = "not a letter, or not sure"
# Letters listed per answer, best first, unless asked otherwise.
DEFAULT_TOP_K = 3
# Inputs per onnxruntime call when predicting many images: large enough to amortise
# the call, small enough to keep the batch in cache.
BATCH = 64
# Inputs per forward pass when a model scores a labelled set (validation and test in
# training, eval, export's parity, quantisation, bench's accuracy): bounded memory for
# a large split, and enough to keep a GEMM busy.
EVAL_BATCH = 256
# The first bytes of what torch.save writes: a zip archive (torch >= 1.6), or a pickle
# (protocol 2+, older torch). An ONNX file is a protobuf and starts with neither.
TORCH_MAGIC: tuple[bytes, ...] = (b"PK\x03\x04", b"\x80\x02", b"\x80\x04", b"\x80\x05")
# What onnxruntime puts before the reason in its messages, e.g.
# "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from m.onnx failed:".
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : (Load model from .* failed:)?\s*")


@dataclass(frozen=True)
class Prediction:
    """What the model read in one image.

    Attributes:
        letter: the upper-case letter, or ``"?"`` when there is no letter to tell.
        confidence: the (calibrated) probability of the most likely letter, 0..1.
        top_k: the most likely letters with their probabilities, best first (also
            for a ``"?"``: what it would have been).
        reason: why the answer is ``"?"`` (:data:`NO_GLYPH` or :data:`NOT_SURE`);
            ``None`` for a letter.
    """

    letter: str
    confidence: float
    top_k: list[tuple[str, float]] = field(default_factory=list)
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``reason`` only for a ``"?"``)."""
        out: dict[str, Any] = {
            "letter": self.letter,
            "confidence": round(self.confidence, 6),
            "top_k": [{"letter": letter, "p": round(p, 6)} for letter, p in self.top_k],
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass
class TimeSpent:
    """Milliseconds a Recognizer spent, summed over the images it read so far."""

    images: int = 0
    preprocess_ms: float = 0.0
    inference_ms: float = 0.0

    def per_image(self) -> tuple[float, float]:
        """Mean milliseconds per image: (preprocessing, inference); zeros before the first image."""
        if not self.images:
            return 0.0, 0.0
        return self.preprocess_ms / self.images, self.inference_ms / self.images


def onnx_errors() -> tuple[type[BaseException], ...]:
    """The exceptions onnxruntime raises for a bad model or a run it cannot do.

    They are neither ``OSError`` nor ``ValueError``; :func:`open_session` and
    :func:`logits` turn them into :class:`~lettercnn.errors.ModelError`.
    """
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = (
        "Fail", "InvalidProtobuf", "InvalidGraph", "NoSuchFile", "InvalidArgument", "NotImplemented",
        "RuntimeException",
    )  # fmt: skip
    return tuple(getattr(state, name) for name in names if hasattr(state, name))


def _ort_reason(error: BaseException) -> str:
    """onnxruntime's reason, on one line, without its error-code prefix."""
    lines = str(error).strip().splitlines()
    reason = _ORT_PREFIX.sub("", lines[0]).strip() if lines else ""
    return reason or type(error).__name__


def open_session(model: str | os.PathLike[str] | bytes, threads: int | None = None) -> Any:
    """An onnxruntime session on the CPU: the one place lettercnn opens a model.

    Args:
        model: an ``.onnx`` file, or a serialized model (bytes).
        threads: intra-op threads; None: onnxruntime's choice (all cores).

    Returns:
        The ``onnxruntime.InferenceSession``.

    Raises:
        ModelError: a missing or empty file, or a model onnxruntime cannot load.
        ValueError: ``threads`` below 1.
    """
    import onnxruntime as ort

    if isinstance(model, bytes):
        source: str | bytes = model
        name = "the serialized model"
    else:
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"model not found: {path}")
        if path.stat().st_size == 0:
            raise ModelError(f"{path} is not a model onnxruntime can load: the file is empty")
        if _is_torch_checkpoint(path):
            raise ModelError(
                f"{path} is a PyTorch checkpoint, not an ONNX model; make one from it with: "
                f"letters export {path.with_suffix('.onnx')} --checkpoint {path}"
            )
        source, name = str(path), str(path)
    options = ort.SessionOptions()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except onnx_errors() as err:
        raise ModelError(
            f"{name} is not a model onnxruntime can load (not ONNX, or truncated): {_ort_reason(err)}"
        ) from None


def _is_torch_checkpoint(path: Path) -> bool:
    """A file ``torch.save`` wrote: a zip archive (``PK``) or, from old torch, a pickle."""
    with path.open("rb") as file:
        head = file.read(len(TORCH_MAGIC[0]))
    return any(head.startswith(magic) for magic in TORCH_MAGIC)


def logits(session: Any, inputs: np.ndarray, *, batch: int = EVAL_BATCH, name: str = "the model") -> np.ndarray:
    """A session's first output for ``inputs``, run ``batch`` inputs at a time.

    Args:
        session: from :func:`open_session`.
        inputs: float32 ``(n, channels, size, size)``.
        batch: inputs per onnxruntime call (1 for a model fixed to batch 1).
        name: the model, as an error names it.

    Returns:
        float32 ``(n, classes)``.

    Raises:
        ModelError: onnxruntime failed to run the model.
    """
    feed = session.get_inputs()[0].name
    array = np.ascontiguousarray(inputs, dtype=np.float32)
    rows = []
    for start in range(0, len(array), batch):
        chunk = array[start : start + batch]
        try:
            rows.append(session.run(None, {feed: chunk})[0])
        except onnx_errors() as err:
            raise ModelError(f"{name} failed on inputs of shape {chunk.shape}: {_ort_reason(err)}") from None
    if not rows:
        classes = session.get_outputs()[0].shape[-1]
        return np.zeros((0, classes if isinstance(classes, int) else 0), np.float32)
    return np.concatenate(rows)


def check_top_k(top_k: int) -> None:
    """Refuse a ``top_k`` below 1: the answer itself is the first of the top k.

    A ``top_k`` above the model's number of classes is not an error: every class is
    listed (asking for 99 alternatives means "all of them").

    Raises:
        ValueError: ``top_k`` < 1.
    """
    if top_k < 1:
        raise ValueError(f"--top-k must be at least 1 (the answer itself is the first), got {top_k}")


def no_glyph() -> Prediction:
    """The answer for a blank image (an empty page, a flat frame): no letter, confidence 0.

    A model forced to answer on an all-black input still picks some letter with a
    fair probability; that guess says nothing, so it is not made.
    """
    return Prediction(UNKNOWN, 0.0, [], NO_GLYPH)


def int8_path(model: str | os.PathLike[str]) -> Path:
    """Where the int8 twin of an fp32 model goes: ``model.onnx`` -> ``model.int8.onnx``."""
    path = Path(model)
    return path.with_name(path.name.removesuffix(".onnx") + INT8_SUFFIX)


def choose_model(model: str | os.PathLike[str] | None, int8: bool) -> Path:
    """The model file for ``--model`` and ``--int8``: the given (or shipped) model, or its int8 twin.

    Raises:
        ModelError: ``int8`` and there is no int8 twin beside the model.
    """
    path = Path(model) if model is not None else DEFAULT_MODEL
    if not int8 or path.name.endswith(INT8_SUFFIX):
        return path
    twin = int8_path(path)
    if not twin.is_file():
        raise ModelError(f"no int8 model beside {path}: {twin} not found; make it with `letters export --int8`")
    return twin


class Recognizer:
    """Reads letters with an exported LetterCNN through onnxruntime.

    Args:
        model: an .onnx file written by ``letters export``; default: the shipped model.
        threads: onnxruntime intra-op threads (default: onnxruntime's choice, all cores).
        assume_letters: accept a model without lettercnn metadata, taking A-Z and the
            default input spec (for models exported by other tools).
        threshold: how preprocessing tells the glyph from the background.

    Raises:
        ModelError: the file is missing, not an ONNX model, or lacks our metadata.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        *,
        assume_letters: bool = False,
        threshold: Threshold = "otsu",
    ) -> None:
        if threshold not in preprocess.THRESHOLDS:
            raise ValueError(f"unknown threshold {threshold!r}; expected one of {', '.join(preprocess.THRESHOLDS)}")
        self.path = Path(model) if model is not None else DEFAULT_MODEL
        if model is None and not self.path.is_file():
            raise ModelError(f"model not found: {self.path} (the package was installed without its model)")
        self.session = open_session(self.path, threads)
        self.metadata = decode(self.session.get_modelmeta().custom_metadata_map)
        self.labels, self.spec = self._read_metadata(assume_letters)
        self.temperature, self.min_confidence = self._read_calibration()
        self.pairs = look_alike_pairs(self.labels)
        self.calibrated = META_CALIBRATION in self.metadata
        self.threshold = threshold
        self.batch = self._check_input()
        self.spent = TimeSpent()

    def _read_metadata(self, assume_letters: bool) -> tuple[list[str], InputSpec]:
        missing = [key for key in REQUIRED_KEYS if key not in self.metadata]
        if missing and not assume_letters:
            raise ModelError(
                f"{self.path} has no lettercnn metadata ({', '.join(missing)} missing); "
                "export it with `letters export`, or pass --assume-letters to take A-Z"
            )
        labels = [str(label) for label in self.metadata.get(META_LABELS, LETTERS)]
        spec_data = self.metadata.get(META_INPUT)
        spec = InputSpec.from_dict(spec_data) if isinstance(spec_data, dict) else preprocess.DEFAULT_SPEC
        outputs = self.session.get_outputs()[0].shape
        if len(outputs) != 2:
            raise ModelError(f"{self.path} gives an output of shape {outputs}; expected (N, {len(labels)}) scores")
        if isinstance(outputs[-1], int) and outputs[-1] != len(labels):
            raise ModelError(f"{self.path} gives {outputs[-1]} scores but its metadata lists {len(labels)} labels")
        return labels, spec

    def _read_calibration(self) -> tuple[float, float]:
        """The model's temperature and default "?" threshold (1 and 0 without calibration).

        Raises:
            ModelError: a calibration that is not a positive temperature and a threshold in [0, 1].
        """
        calibration = self.metadata.get(META_CALIBRATION)
        if calibration is None:
            return 1.0, 0.0
        try:
            temperature = float(calibration["temperature"])
            threshold = float(calibration.get("min_confidence", 0.0))
        except (TypeError, KeyError, ValueError):
            raise ModelError(f"{self.path} has an unreadable calibration in its metadata: {calibration!r}") from None
        if not (np.isfinite(temperature) and temperature > 0 and 0.0 <= threshold <= 1.0):
            raise ModelError(
                f"{self.path} has calibration temperature {temperature} and threshold {threshold}; "
                "expected a positive temperature and a threshold in [0, 1]"
            )
        return temperature, threshold

    def _check_input(self) -> int:
        """The model must take what preprocessing gives: float (N, channels, size, size).

        Returns:
            Inputs per onnxruntime call: :data:`BATCH`, or 1 for a model fixed to batch 1.

        Raises:
            ModelError: another input shape or type (a model for other images).
        """
        model_input = self.session.get_inputs()[0]
        wanted = (self.spec.channels, self.spec.size, self.spec.size)
        shape = model_input.shape
        fixed = [(dim, want) for dim, want in zip(shape[1:], wanted) if isinstance(dim, int)]
        batch = shape[0] if shape and isinstance(shape[0], int) else None
        if len(shape) != 4 or any(dim != want for dim, want in fixed) or batch not in (None, 1):
            raise ModelError(
                f"{self.path} takes input {model_input.name!r} of shape {shape}; lettercnn feeds "
                f"(N, {', '.join(map(str, wanted))}) images (its input spec: {self.spec.size}x{self.spec.size}, "
                f"{self.spec.channels} channel)"
            )
        if model_input.type != "tensor(float)":
            raise ModelError(f"{self.path} takes {model_input.type} input; lettercnn feeds tensor(float)")
        return BATCH if batch is None else 1

    def glyph(self, image: np.ndarray | str | os.PathLike[str]) -> np.ndarray:
        """One image to the canonical uint8 glyph the model reads (this model's spec).

        Raises:
            preprocess.ImageError: an unreadable file or an array that is not an image.
        """
        return preprocess.canonical(image, spec=self.spec, threshold=self.threshold)

    def classify(
        self, glyphs: Sequence[np.ndarray], top_k: int = DEFAULT_TOP_K, min_confidence: float | None = None
    ) -> list[Prediction]:
        """Predictions for canonical glyphs (see :meth:`glyph`), one each; [] for none.

        A blank glyph (all black: preprocessing found no glyph) is answered
        :func:`no_glyph` without running the model.

        Raises:
            ValueError: ``top_k`` < 1.
            ModelError: onnxruntime failed to run the model.
        """
        check_top_k(top_k)
        inked = [index for index, glyph in enumerate(glyphs) if glyph.any()]
        predictions = [no_glyph() for _ in glyphs]
        if inked:
            inputs = np.stack([preprocess.normalize(glyphs[index], self.spec) for index in inked])
            for index, prediction in zip(inked, self.decide(self.probabilities(inputs), top_k, min_confidence)):
                predictions[index] = prediction
        return predictions

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (n, classes) for prepared inputs (n, 1, size, size):
        the softmax of the logits divided by the model's temperature.

        Raises:
            ModelError: onnxruntime failed to run the model on them.
        """
        if not len(inputs):
            return np.zeros((0, len(self.labels)), np.float32)
        scores = logits(self.session, inputs, batch=self.batch, name=str(self.path))
        return softmax(scores, self.temperature).astype(np.float32)

    def predict(
        self,
        images: np.ndarray | str | os.PathLike[str] | Sequence[np.ndarray | str | os.PathLike[str]],
        top_k: int = DEFAULT_TOP_K,
        min_confidence: float | None = None,
    ) -> Prediction | list[Prediction]:
        """Read the letter in one image, or in each of a list of images.

        Args:
            images: a path or an image array, or a list of them.
            top_k: how many classes to list with their probabilities.
            min_confidence: below this the answer is ``"?"``; ``None``: the model's own
                threshold (:attr:`min_confidence`, from its calibration).

        Returns:
            One :class:`Prediction` for one image, a list for a list.

        Raises:
            preprocess.ImageError: an image cannot be read (the whole call fails; use
                :meth:`read_file` per file to go on past bad files).
            ValueError: ``top_k`` < 1.
        """
        single = isinstance(images, (str, os.PathLike)) or (isinstance(images, np.ndarray) and images.ndim <= 3)
        batch = [images] if single else list(images)
        start = time.perf_counter()
        glyphs = [self.glyph(image) for image in batch]
        prepared = time.perf_counter()
        predictions = self.classify(glyphs, top_k, min_confidence)
        self._count(len(batch), prepared - start, time.perf_counter() - prepared)
        return predictions[0] if single else predictions

    def decide(
        self, probabilities: np.ndarray, top_k: int = DEFAULT_TOP_K, min_confidence: float | None = None
    ) -> list[Prediction]:
        """Predictions from rows of probabilities; ``top_k`` above the classes lists them all.

        Below ``min_confidence`` (``None``: the model's own threshold) the answer is
        ``"?"``, with the letters it would have been in ``top_k``; a look-alike pair
        that reaches it together (a plain bar: I or l) is answered the likelier of the
        two (:func:`lettercnn.calibration.answered`).
        """
        check_top_k(top_k)
        threshold = self.min_confidence if min_confidence is None else min_confidence
        k = min(top_k, probabilities.shape[1]) if probabilities.ndim == 2 else top_k
        results = []
        for row, answer in zip(probabilities, answered(probabilities, threshold, self.pairs), strict=True):
            order = np.argsort(row)[::-1][:k]
            best = float(row[order[0]])
            top = [(self.labels[i], float(row[i])) for i in order]
            if answer:
                results.append(Prediction(self.labels[order[0]], best, top))
            else:
                results.append(Prediction(UNKNOWN, best, top, NOT_SURE))
        return results

    def read_file(
        self,
        path: str | os.PathLike[str],
        *,
        top_k: int = DEFAULT_TOP_K,
        min_confidence: float | None = None,
        word: bool = False,
    ) -> FileResult:
        """Read one file: a single letter, or with ``word`` every letter left to right.

        Never raises for a bad image: an unreadable file comes back with ``error``
        set, so a batch goes on with the other files. A blank image is read as
        :func:`no_glyph` (``"?"``, confidence 0).

        Raises:
            ValueError: ``top_k`` < 1.
            ModelError: onnxruntime failed to run the model.
        """
        file = Path(path)
        start = time.perf_counter()
        spaces: list[bool] = []
        try:
            image = preprocess.load_image(file)
            if word:
                crops = preprocess.split_word(image, threshold=self.threshold, spec=self.spec)
                glyphs, spaces = [crop.glyph for crop in crops], [crop.space_before for crop in crops]
            else:
                glyphs = [self.glyph(image)]
        except preprocess.ImageError as err:
            return FileResult(file, error=str(err), ms=(time.perf_counter() - start) * 1000.0)
        prepared = time.perf_counter()
        predictions = self.classify(glyphs, top_k, min_confidence)
        hint = None if word else self._word_hint(image, predictions[0])
        done = time.perf_counter()
        self._count(1, prepared - start, done - prepared)
        return FileResult(file, predictions, glyphs, ms=(done - start) * 1000.0, spaces=spaces, hint=hint)

    def _word_hint(self, image: np.ndarray, prediction: Prediction) -> str | None:
        """A hint when the image clearly holds a word: several whole letters on a line.

        Letters cut off by the image's border (the neighbours of a letter photographed
        in a line of text) do not count: the single letter in the middle is the answer.
        """
        if prediction.reason == NO_GLYPH:
            return None
        crops = preprocess.split_word(
            image, threshold=self.threshold, spec=self.spec, max_side=preprocess.MAX_WORK_SIDE
        )
        height, width = image.shape[:2]
        whole = [
            c for c in crops if c.box[0] > 0 and c.box[1] > 0 and sum(c.box[::2]) < width and sum(c.box[1::2]) < height
        ]
        if len(whole) < 2:
            return None
        return f"the image holds {len(whole)} separate letters; to read them as a word, use --word"

    def _count(self, images: int, preprocess_s: float, inference_s: float) -> None:
        self.spent.images += images
        self.spent.preprocess_ms += preprocess_s * 1000.0
        self.spent.inference_ms += inference_s * 1000.0


@dataclass
class FileResult:
    """The answer for one input file: a letter, a word, or the error that stopped it.

    Attributes:
        path: the file.
        predictions: one per letter (one for a single letter; several in word mode).
        glyphs: the 32x32 images the model saw, one per prediction.
        error: a one-line reason when the file could not be read; then no predictions.
        ms: wall milliseconds for the file (preprocessing and inference).
        spaces: in word mode, whether a word space comes before each letter.
        hint: advice on reading the file (e.g. that it holds a word: use --word).
    """

    path: Path
    predictions: list[Prediction] = field(default_factory=list)
    glyphs: list[np.ndarray] = field(default_factory=list)
    error: str | None = None
    ms: float = 0.0
    spaces: list[bool] = field(default_factory=list)
    hint: str | None = None

    @property
    def text(self) -> str:
        """The letters read, in order, with the word spaces ("" for an error or a blank word)."""
        spaces = self.spaces or [False] * len(self.predictions)
        return "".join((" " if space else "") + p.letter for p, space in zip(self.predictions, spaces))

    def save_crops(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write the 32x32 images the model saw, named after the file (and letter index) and the answer.

        Returns:
            The files written, e.g. ``folder/R_R.png`` or ``folder/word_Jig_0_J.png``.
        """
        from lettercnn.fileio import write_bytes

        written = []
        for index, (glyph, prediction) in enumerate(zip(self.glyphs, self.predictions)):
            suffix = f"_{index}" if len(self.glyphs) > 1 else ""
            file = Path(folder) / f"{self.path.stem}{suffix}_{prediction.letter.replace(UNKNOWN, 'unknown')}.png"
            write_bytes(file, preprocess.encode_png(glyph))
            written.append(file)
        return written

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: path, the answer (or error), per-letter details, ms."""
        out: dict[str, Any] = {"path": str(self.path)}
        if self.error is not None:
            return {**out, "error": self.error}
        if len(self.predictions) == 1 and not self.spaces:
            out.update(self.predictions[0].to_dict())
        else:
            out.update(word=self.text, letters=[p.to_dict() for p in self.predictions])
        if self.hint is not None:
            out["hint"] = self.hint
        return {**out, "ms": round(self.ms, 3)}
