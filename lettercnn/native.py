"""The runtime's two native libraries, OpenCV (``cv2``) and onnxruntime: why one does not load, in one line.

On a minimal Debian or Raspberry Pi OS the ``opencv-python`` wheel dies on import with
``ImportError: libxcb.so.1: cannot open shared object file``, and Debian's own OpenCV
dies under numpy 2. :func:`load_failure` turns such an ImportError into a
:class:`~lettercnn.errors.NativeLibraryError` whose message names what is missing and
the command that installs it.

The ``letters`` command tries ``cv2`` before it imports the command line (every runtime
module imports OpenCV): where it fails, :func:`stand_in_if_broken` puts a module in its
place that raises that error on first use, so ``letters --help`` still works and every
command's error boundary (``boundary.user_errors``, through :func:`raise_stand_in_failure`)
prints the one line. onnxruntime is imported where a command first needs it;
:func:`explain_import_error` explains it there.

Standard library only: this module must load when OpenCV does not.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import io
import re
import sys
import types

from lettercnn.errors import NativeLibraryError

OPENCV = "cv2"
ONNXRUNTIME = "onnxruntime"
NATIVE_MODULES = (OPENCV, ONNXRUNTIME)
# How a message names each module, and the pip requirement that installs it.
DISPLAY_NAMES = {OPENCV: "OpenCV (cv2)", ONNXRUNTIME: "onnxruntime"}
PIP_REQUIREMENTS = {OPENCV: "opencv-python-headless", ONNXRUNTIME: "onnxruntime"}

# The two OpenCV wheels. They install the same cv2/ folder, so one must be uninstalled before
# the other goes in; uninstalling both first also repairs a venv that has both.
OPENCV_GUI = "opencv-python"
OPENCV_HEADLESS = "opencv-python-headless"
OPENCV_WHEELS = (OPENCV_GUI, OPENCV_HEADLESS)
_UNINSTALL_BOTH = f"pip uninstall -y {OPENCV_GUI} {OPENCV_HEADLESS}"
SWAP_TO_HEADLESS = f"{_UNINSTALL_BOTH} && pip install {OPENCV_HEADLESS}"
SWAP_TO_GUI = f"{_UNINSTALL_BOTH} && pip install {OPENCV_GUI}"

# The Debian package (bookworm names, from `dpkg -S`) of each shared library a wheel may miss.
DEBIAN_PACKAGES = {
    "libGL.so.1": "libgl1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libXext.so.6": "libxext6",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libgomp.so.1": "libgomp1",
    "libz.so.1": "zlib1g",
    "libstdc++.so.6": "libstdc++6",
}
# What the opencv-python (GUI) wheel loads from the system on import, beyond libc, libstdc++
# and zlib: `ldd cv2/cv2.abi3.so` of 5.0.0.93 on x86_64, `readelf -d` of its aarch64 twin.
# The headless wheel needs none of them.
GUI_WHEEL_PACKAGES = ("libgl1", "libglib2.0-0", "libxcb1")
APT_SYSTEMS = "Debian, Ubuntu, Raspberry Pi OS"

_MISSING_LIBRARY = re.compile(r"([\w.+-]+\.so(?:\.\d+)*): cannot open shared object file")
# What an extension built against numpy 1 raises under numpy 2 (Debian bookworm's python3-opencv).
_NUMPY_ABI = re.compile(r"numpy\.core\.multiarray failed to import|_ARRAY_API|compiled using NumPy 1")


def missing_library(message: str) -> str | None:
    """The shared library a loader message says it could not find (``libxcb.so.1``), or None."""
    found = _MISSING_LIBRARY.search(message)
    return found.group(1) if found else None


def installed_opencv_wheels() -> tuple[str, ...]:
    """Which of ``opencv-python`` and ``opencv-python-headless`` pip has installed here."""
    installed = []
    for wheel in OPENCV_WHEELS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            importlib.metadata.distribution(wheel)
            installed.append(wheel)
    return tuple(installed)


def explain(module: str, error: ImportError, opencv_wheels: tuple[str, ...] | None = None) -> str:
    """One line: why ``module`` did not import, and the command that fixes it.

    Args:
        module: ``"cv2"`` or ``"onnxruntime"``.
        error: what importing it raised.
        opencv_wheels: the OpenCV wheels installed (:func:`installed_opencv_wheels` when None).

    Returns:
        The message, e.g. ``OpenCV (cv2) cannot load libxcb.so.1, a system library it
        needs; install ... with: sudo apt install libgl1 libglib2.0-0 libxcb1 ...``.
    """
    name, requirement = DISPLAY_NAMES[module], PIP_REQUIREMENTS[module]
    if isinstance(error, ModuleNotFoundError) and error.name == module:
        wheels = installed_opencv_wheels() if opencv_wheels is None else opencv_wheels
        if module == OPENCV and wheels:  # both wheels were in; uninstalling one took the shared cv2/ folder
            return (
                f"{name} is gone though pip lists {' and '.join(wheels)}: the two OpenCV wheels share the cv2 "
                f"folder, and uninstalling one removes it; reinstall one with: {SWAP_TO_HEADLESS}"
            )
        return f"{name} is not installed; install it with: pip install {requirement}"
    reason = str(error)
    library = missing_library(reason)
    if library is not None:
        return (
            f"{name} cannot load {library}, a system library it needs; {_library_fix(module, library, opencv_wheels)}"
        )
    if _NUMPY_ABI.search(reason):
        return (
            f"{name} was built for numpy 1 and this is numpy {_numpy_version()}; "
            "install a numpy it can load with: pip install 'numpy<2'"
        )
    return f"{name} cannot be loaded ({reason}); reinstall it with: pip install --force-reinstall {requirement}"


def _library_fix(module: str, library: str, opencv_wheels: tuple[str, ...] | None) -> str:
    """The install command for a missing shared library (and, for the GUI wheel, the swap that avoids it)."""
    if module == OPENCV and OPENCV_GUI in (installed_opencv_wheels() if opencv_wheels is None else opencv_wheels):
        return (
            f"install the libraries of the {OPENCV_GUI} wheel with: sudo apt install {' '.join(GUI_WHEEL_PACKAGES)} "
            f"({APT_SYSTEMS}), or swap it for the wheel without a window, which needs none: {SWAP_TO_HEADLESS}"
        )
    package = DEBIAN_PACKAGES.get(library)
    if package is None:
        return f"find the package that has it with: apt-file search {library} ({APT_SYSTEMS})"
    return f"install it with: sudo apt install {package} ({APT_SYSTEMS})"


def _numpy_version() -> str:
    try:
        return importlib.metadata.version("numpy")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def load_failure(module: str) -> NativeLibraryError | None:
    """Import ``module``; None if it loads, else the error that says why not and what fixes it.

    What an import that fails prints on stderr (numpy's page on a numpy 1 extension) is
    dropped: the error's one line says it. An import that works keeps its output.
    """
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            importlib.import_module(module)
    except ImportError as error:
        return NativeLibraryError(explain(module, error), module)
    sys.stderr.write(captured.getvalue())
    return None


def explain_import_error(error: ImportError) -> NativeLibraryError | None:
    """The :class:`NativeLibraryError` behind an ImportError a command raised, or None if it is another.

    Each native module is imported again (a failed import is not cached, so it fails
    again the same way); the first that fails is the explanation.
    """
    if isinstance(error, NativeLibraryError):
        return error
    for module in NATIVE_MODULES:
        failure = load_failure(module)
        if failure is not None:
            return failure
    return None


class StandIn(types.ModuleType):
    """Takes the place of a native module that does not load: using it raises why.

    Dunder lookups (``__file__``, ``__path__``) are an ``AttributeError``, as on any
    module without them, so tools that walk ``sys.modules`` are not tripped.

    Attributes:
        failure: the error that says why the module did not load.
    """

    def __init__(self, failure: NativeLibraryError) -> None:
        super().__init__(failure.module)
        self.failure = failure

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        raise self.failure


def stand_in_if_broken(module: str = OPENCV) -> NativeLibraryError | None:
    """Import ``module``; where it fails, put a :class:`StandIn` in ``sys.modules`` and return the failure."""
    failure = load_failure(module)
    if failure is not None:
        sys.modules[module] = StandIn(failure)
    return failure


def raise_stand_in_failure() -> None:
    """Raise the failure of a native module that a :class:`StandIn` replaced, if any.

    Raises:
        NativeLibraryError: naming the library that is missing and the fix.
    """
    for module in NATIVE_MODULES:
        stand_in = sys.modules.get(module)
        if isinstance(stand_in, StandIn):
            raise stand_in.failure
