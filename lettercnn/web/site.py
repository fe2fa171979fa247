"""Write the static site and serve it (standard library only, besides the runtime).

OUT/
  index.html, style.css, app.js, model.js, preprocess.js, selftest.js   the page (static/)
  model.onnx                the model, byte for byte the file given (fp32 or int8)
  site.json                 where the model came from, and the runtime's version
  vendor/                   onnxruntime-web: ort.wasm.bundle.min.mjs, its .wasm, LICENSE, VERSION.json
  selftest/cases.json       what ?selftest=1 compares with Python (selftest.py)
  selftest/drawn-*.png      the drawn letters it reads
"""

from __future__ import annotations

import functools
import http.server
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lettercnn.errors import ModelError
from lettercnn.fileio import write_bytes, write_json
from lettercnn.runtime import INT8_SUFFIX, Recognizer, choose_model

STATIC = Path(__file__).parent / "static"
VENDOR = Path(__file__).parent / "vendor"
# The page's own files, copied as they are.
SITE_FILES = ("index.html", "style.css", "app.js", "model.js", "preprocess.js", "selftest.js")
# The runtime files the page loads, and their provenance (tools/vendor_onnxruntime_web.py).
VENDOR_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm", "LICENSE", "VERSION.json")
MODEL_NAME = "model.onnx"
DEFAULT_PORT = 8000
# What a static server must say for the page's files: the WASM runtime is compiled
# while it streams only as application/wasm; an ES module needs a JavaScript type.
MIME_TYPES = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript"}


@dataclass
class Site:
    """What :func:`build_site` wrote.

    Attributes:
        folder: the site's folder.
        model: the model file it copied.
        files: every file written, relative to ``folder``, with its size in bytes.
        cases: self-test cases (32x32 inputs, drawn letters).
    """

    folder: Path
    model: Path
    files: dict[str, int] = field(default_factory=dict)
    cases: tuple[int, int] = (0, 0)

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())

    def bytes_under(self, prefix: str) -> int:
        return sum(size for name, size in self.files.items() if name.startswith(prefix))

    def summary(self) -> str:
        """One line: where, how big, and of what."""
        mb = 1e6
        return (
            f"Wrote {self.folder}/ ({len(self.files)} files, {self.total_bytes / mb:.1f} MB: "
            f"model {self.files[MODEL_NAME] / mb:.2f} MB from {self.model.name}, "
            f"onnxruntime-web {ort_web_version()} {self.bytes_under('vendor/') / mb:.1f} MB, "
            f"self-test {sum(self.cases)} cases {self.bytes_under('selftest/') / mb:.2f} MB)"
        )


def ort_web_version() -> str:
    """The vendored onnxruntime-web version (from vendor/VERSION.json)."""
    return str(json.loads((VENDOR / "VERSION.json").read_text())["version"])


def build_site(
    out: str | os.PathLike[str],
    model: str | os.PathLike[str] | None = None,
    *,
    int8: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Site:
    """Write the static site for a model into ``out`` (created; files there are replaced).

    Args:
        out: the site's folder.
        model: an ``.onnx`` from ``letters export`` (default: the shipped model).
        int8: use the model's int8 twin (``MODEL.int8.onnx``).
        progress: called with a short note before each step.

    Returns:
        The :class:`Site` written.

    Raises:
        ModelError: the model is missing, not ONNX, or lacks lettercnn metadata.
        OSError: ``out`` is a file, or cannot be written.
    """
    from lettercnn.web.selftest import write_cases

    note = progress or (lambda _step: None)
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file; give a folder for the site")
    path = choose_model(model, int8)
    note("reading the model")
    recognizer = Recognizer(path, threads=1)  # refuses a model without our metadata, before anything is written
    site = Site(folder, path)
    _copy(path, folder / MODEL_NAME, site)
    for name in SITE_FILES:
        _copy(STATIC / name, folder / name, site)
    for name in VENDOR_FILES:
        source = VENDOR / name
        if not source.is_file():
            raise ModelError(f"the package lacks onnxruntime-web's {source}; reinstall lettercnn")
        _copy(source, folder / "vendor" / name, site)
    about = {
        "model": MODEL_NAME,
        "source": path.name,
        "int8": path.name.endswith(INT8_SUFFIX),
        "bytes": path.stat().st_size,
        "onnxruntime_web": ort_web_version(),
    }
    write_json(folder / "site.json", about)
    site.files["site.json"] = (folder / "site.json").stat().st_size
    note("self-test cases: onnxruntime and letters recognize")
    written, site.cases = write_cases(recognizer, folder / "selftest")
    site.files.update({f"selftest/{name}": size for name, size in written.items()})
    return site


def _copy(source: Path, target: Path, site: Site) -> None:
    data = source.read_bytes()
    write_bytes(target, data)
    site.files[target.relative_to(site.folder).as_posix()] = len(data)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with the types the page needs; one log line per request is left out."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(folder: str | os.PathLike[str], port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> http.server.HTTPServer:
    """A static file server for the site on ``host:port`` (0: any free port); not started.

    Call ``serve_forever()`` on it (or run it in a thread) and ``server_close()`` after.

    Raises:
        FileNotFoundError: ``folder`` holds no index.html.
        OSError: the port is taken (or not ours to take).
    """
    root = Path(folder)
    if not (root / "index.html").is_file():
        raise FileNotFoundError(f"no site in {root}: index.html not found; write one with: letters web {root}")
    handler = functools.partial(_Handler, directory=str(root))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as err:
        raise OSError(f"cannot serve on {host}:{port}: {err.strerror or err}; choose another with --port") from None
