"""The errors lettercnn raises for bad input or a bad environment, in one place.

Every one is a :class:`LetterError`; the command line's one error boundary
(:func:`lettercnn.boundary.user_errors`) prints its message as ``Error: ...`` and exits 1.
Most also keep the built-in base they always had (``ValueError`` for a bad value,
``ImportError`` for a missing package), so ``except ValueError`` in a caller's code
goes on working::

    LetterError
        ImageError (ValueError)        an image that cannot be read or understood
        ModelError (ValueError)        an .onnx that is missing, unreadable or not ours
        CameraError (RuntimeError)     a source that does not open or decode
        FontError (ValueError)         a font that cannot draw all 52 letters
        TrainingError                  training cannot go on
            NonFiniteLossError         the loss became NaN or infinite
            RunFinishedError           a resumed run has nothing left to do
        ExportError (ValueError)       the exported graph is not the one we ship
            ParityError                onnxruntime disagrees with torch
        AccuracyDropError (ValueError) the int8 model lost too much accuracy
        MissingExtra (ImportError)     a command needs the ``train`` extra
        NativeLibraryError (ImportError)  OpenCV or onnxruntime does not load

:class:`TrainingInterrupted` is no error but Ctrl-C (a ``KeyboardInterrupt``) that
knows which run it stopped; it lives here because the boundary handles it too.

Standard library only: the torch-free runtime imports this module.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

# The optional dependency group of the training side, and what installs it.
TRAIN_EXTRA = "train"
# The top-level modules the training extra brings (pyproject.toml's [train] list).
TRAIN_MODULES = ("torch", "torchvision", "onnx", "onnxscript", "matplotlib", "sklearn")


class LetterError(Exception):
    """The base of every error lettercnn raises on purpose; its message says what to do."""


class ImageError(LetterError, ValueError):
    """An image that cannot be read or understood."""


class ModelError(LetterError, ValueError):
    """A model file that is missing, unreadable, or not a lettercnn model."""


class CameraError(LetterError, RuntimeError):
    """A source that does not open or decode, or a recording that cannot be written."""


class FontError(LetterError, ValueError):
    """A font that cannot draw all 52 letters."""


class TrainingError(LetterError):
    """Training cannot go on; the message says why and what to do."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite; training stopped, best.pt is kept."""


class RunFinishedError(TrainingError):
    """A resumed run has already trained all its epochs and written its metrics."""


class ExportError(LetterError, ValueError):
    """The exported graph is not the one we ship (not plain, wrong opset, unreadable)."""


class ParityError(ExportError):
    """onnxruntime's logits differ from the torch model's; nothing was written.

    Attributes:
        parity: the measured figures (:class:`lettercnn.export.Parity`), one per checked batch.
    """

    def __init__(self, message: str, parity: tuple[Any, ...]) -> None:
        super().__init__(message)
        self.parity = parity


class AccuracyDropError(LetterError, ValueError):
    """The int8 model lost too much accuracy; nothing was written.

    Attributes:
        report: the measured figures (:class:`lettercnn.quantize.QuantReport`).
    """

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message)
        self.report = report


class MissingExtra(LetterError, ImportError):
    """A command needs a package of an optional extra that is not installed.

    Attributes:
        module: the first missing top-level module, e.g. ``"torch"``.
        extra: the extra that brings it, e.g. ``"train"``.
    """

    def __init__(self, what: str, module: str, extra: str = TRAIN_EXTRA) -> None:
        super().__init__(
            f"{what} needs the {extra} extra, and {module} is not installed; install it with: "
            f"pip install 'lettercnn[{extra}]'"
        )
        self.module = module
        self.extra = extra


class NativeLibraryError(LetterError, ImportError):
    """OpenCV or onnxruntime is missing or does not load (a system library missing, numpy 2
    under an OpenCV built for numpy 1); :mod:`lettercnn.native` writes the message.

    Attributes:
        module: the module that does not load, ``"cv2"`` or ``"onnxruntime"``.
    """

    def __init__(self, message: str, module: str) -> None:
        super().__init__(message)
        self.module = module


def require_extra(what: str, modules: tuple[str, ...] = TRAIN_MODULES, extra: str = TRAIN_EXTRA) -> None:
    """Raise :class:`MissingExtra` unless every module of ``extra`` can be imported.

    Looks the modules up without importing them, so a command can call it first,
    before it loads torch or writes anything.

    Args:
        what: what needs them, as the message says it, e.g. ``"letters train"``.
        modules: top-level module names to look for.
        extra: the optional dependency group that installs them.

    Raises:
        MissingExtra: naming the first missing module and the pip command that installs it.
    """
    module = missing_module(modules)
    if module is not None:
        raise MissingExtra(what, module, extra)


def missing_module(modules: tuple[str, ...] = TRAIN_MODULES) -> str | None:
    """The first of ``modules`` that cannot be imported (looked up, not imported); None if none."""
    # find_spec is None for a module that is not installed, and for one hidden as sys.modules[name] = None.
    return next((module for module in modules if importlib.util.find_spec(module) is None), None)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training; ``last.pt`` holds the last finished epoch.

    A ``KeyboardInterrupt``, so that code which does not know it still stops.

    Attributes:
        run_dir: the run folder, to pass to ``fit(resume=...)``.
        epochs_done: finished epochs kept in ``last.pt``.
        epochs: the epochs the run is configured for.
        world_size: the processes it trained in (it resumes in as many).
    """

    def __init__(self, run_dir: Path, epochs_done: int, epochs: int, world_size: int = 1) -> None:
        super().__init__(f"training interrupted: {run_dir} keeps {epochs_done}/{epochs} finished epochs")
        self.run_dir = run_dir
        self.epochs_done = epochs_done
        self.epochs = epochs
        self.world_size = world_size
