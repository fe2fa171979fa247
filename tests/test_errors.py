"""Tests of lettercnn.errors: one family of errors, each keeping its built-in base."""

from __future__ import annotations

import sys

import pytest

from lettercnn import errors
from lettercnn.errors import LetterError, MissingExtra, require_extra


@pytest.mark.parametrize(
    "error, base",
    [(errors.ImageError, ValueError), (errors.ModelError, ValueError), (errors.CameraError, RuntimeError),
     (errors.FontError, ValueError), (errors.ExportError, ValueError), (errors.ParityError, ValueError),
     (errors.AccuracyDropError, ValueError), (errors.MissingExtra, ImportError),
     (errors.NativeLibraryError, ImportError),
     (errors.NonFiniteLossError, errors.TrainingError), (errors.RunFinishedError, errors.TrainingError)],
)  # fmt: skip
def test_every_error_is_a_letter_error_and_keeps_its_builtin_base(error: type, base: type) -> None:
    assert issubclass(error, LetterError) and issubclass(error, base)


def test_training_interrupted_is_ctrl_c_not_an_error() -> None:
    assert issubclass(errors.TrainingInterrupted, KeyboardInterrupt)
    assert not issubclass(errors.TrainingInterrupted, LetterError)


def test_a_missing_module_of_the_extra_names_it_and_the_fix() -> None:
    with pytest.raises(MissingExtra) as raised:
        require_extra("letters train", ("json", "no_such_module_here"))
    assert str(raised.value) == (
        "letters train needs the train extra, and no_such_module_here is not installed; "
        "install it with: pip install 'lettercnn[train]'"
    )
    assert raised.value.module == "no_such_module_here" and raised.value.extra == "train"


def test_an_installed_extra_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    require_extra("letters train", ("json", "pathlib"))
    monkeypatch.setitem(sys.modules, "json", None)  # hidden as a test hides torch
    with pytest.raises(MissingExtra, match="json is not installed"):
        require_extra("letters train", ("json",))
