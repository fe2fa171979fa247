"""Tests of lettercnn.native: why OpenCV or onnxruntime does not load, said in one line with the fix."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lettercnn import native
from lettercnn.errors import LetterError, NativeLibraryError

LOADER_MESSAGE = "{}: cannot open shared object file: No such file or directory"


def loader_error(library: str) -> ImportError:
    """What importing an extension raises when the dynamic loader misses ``library``."""
    return ImportError(LOADER_MESSAGE.format(library))


@pytest.mark.parametrize("library", ["libxcb.so.1", "libGL.so.1", "libglib-2.0.so.0", "libstdc++.so.6", "libfoo.so"])
def test_the_missing_library_is_read_from_the_loaders_message(library: str) -> None:
    assert native.missing_library(LOADER_MESSAGE.format(library)) == library
    assert native.missing_library("No module named 'cv2'") is None


def test_the_gui_wheel_missing_a_library_names_all_it_needs_and_the_swap_to_headless() -> None:
    message = native.explain("cv2", loader_error("libxcb.so.1"), opencv_wheels=("opencv-python",))
    assert message == (
        "OpenCV (cv2) cannot load libxcb.so.1, a system library it needs; install the libraries of the "
        "opencv-python wheel with: sudo apt install libgl1 libglib2.0-0 libxcb1 (Debian, Ubuntu, Raspberry Pi OS), "
        "or swap it for the wheel without a window, which needs none: "
        "pip uninstall -y opencv-python opencv-python-headless && pip install opencv-python-headless"
    )


@pytest.mark.parametrize(
    "module, library, fix",
    [("cv2", "libGL.so.1", "sudo apt install libgl1"), ("cv2", "libgthread-2.0.so.0", "sudo apt install libglib2.0-0"),
     ("onnxruntime", "libgomp.so.1", "sudo apt install libgomp1"),
     ("onnxruntime", "libfoo.so.3", "apt-file search libfoo.so.3")],
)  # fmt: skip
def test_another_missing_library_gets_its_debian_package(module: str, library: str, fix: str) -> None:
    message = native.explain(module, loader_error(library), opencv_wheels=("opencv-python-headless",))
    assert message.startswith(f"{native.DISPLAY_NAMES[module]} cannot load {library}, a system library it needs; ")
    assert fix in message and "swap" not in message


@pytest.mark.parametrize("module, requirement", [("cv2", "opencv-python-headless"), ("onnxruntime", "onnxruntime")])
def test_a_module_not_installed_names_the_pip_package(module: str, requirement: str) -> None:
    error = ModuleNotFoundError(f"No module named '{module}'", name=module)
    assert native.explain(module, error, opencv_wheels=()) == (
        f"{native.DISPLAY_NAMES[module]} is not installed; install it with: pip install {requirement}"
    )


def test_a_cv2_folder_gone_under_a_listed_wheel_says_to_reinstall_one_wheel() -> None:
    # Both wheels installed, then one uninstalled: pip still lists the other, whose cv2/ is gone,
    # and `pip install` of it says "already satisfied" (measured with 5.0.0.93).
    error = ModuleNotFoundError("No module named 'cv2'", name="cv2")
    assert native.explain("cv2", error, opencv_wheels=("opencv-python-headless",)) == (
        "OpenCV (cv2) is gone though pip lists opencv-python-headless: the two OpenCV wheels share the cv2 folder, "
        "and uninstalling one removes it; reinstall one with: "
        "pip uninstall -y opencv-python opencv-python-headless && pip install opencv-python-headless"
    )


def test_an_opencv_built_for_numpy_1_under_numpy_2_says_numpy_below_2() -> None:
    message = native.explain("cv2", ImportError("numpy.core.multiarray failed to import"))
    assert message.startswith("OpenCV (cv2) was built for numpy 1 and this is numpy ")
    assert message.endswith("install a numpy it can load with: pip install 'numpy<2'")


def test_any_other_import_error_is_quoted_with_a_reinstall() -> None:
    message = native.explain("onnxruntime", ImportError("DLL load failed"))
    assert message == (
        "onnxruntime cannot be loaded (DLL load failed); reinstall it with: pip install --force-reinstall onnxruntime"
    )


def write_failing_cv2(folder: Path) -> None:
    """A cv2 package that prints a page on stderr and fails, as Debian's OpenCV does under numpy 2."""
    (folder / "cv2").mkdir()
    (folder / "cv2" / "__init__.py").write_text(
        "import sys\n"
        "sys.stderr.write('A module that was compiled using NumPy 1.x cannot be run in NumPy 2\\n')\n"
        "raise ImportError('numpy.core.multiarray failed to import')\n"
    )


def test_a_failed_import_is_one_error_and_its_page_on_stderr_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_failing_cv2(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cv2", raising=False)
    failure = native.load_failure("cv2")
    assert isinstance(failure, NativeLibraryError) and isinstance(failure, LetterError)
    assert failure.module == "cv2" and "pip install 'numpy<2'" in str(failure)
    assert capsys.readouterr().err == ""


def test_a_module_that_loads_is_no_failure() -> None:
    assert native.load_failure("cv2") is None and native.load_failure("onnxruntime") is None
    assert native.explain_import_error(ImportError("cannot import name 'x' from 'y'")) is None


def test_a_stand_in_raises_the_failure_on_use_but_not_for_dunders() -> None:
    failure = NativeLibraryError("OpenCV (cv2) cannot load libxcb.so.1", "cv2")
    stand_in = native.StandIn(failure)
    with pytest.raises(NativeLibraryError) as raised:
        stand_in.imread  # noqa: B018 - the attribute access is what is tested
    assert raised.value is failure
    assert getattr(stand_in, "__file__", None) is None and stand_in.__name__ == "cv2"


def test_a_stand_in_in_sys_modules_is_raised_at_the_boundary(monkeypatch: pytest.MonkeyPatch) -> None:
    native.raise_stand_in_failure()  # the real cv2: nothing to raise
    failure = NativeLibraryError("OpenCV (cv2) cannot load libxcb.so.1", "cv2")
    monkeypatch.setitem(sys.modules, "cv2", native.StandIn(failure))
    with pytest.raises(NativeLibraryError, match="libxcb.so.1"):
        native.raise_stand_in_failure()
