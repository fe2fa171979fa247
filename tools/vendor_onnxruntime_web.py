"""Vendor onnxruntime-web's single-threaded WASM build into lettercnn/web/vendor.

The page ``letters web`` writes runs the model with onnxruntime-web's WASM backend.
This script runs ``npm pack onnxruntime-web@<version>`` in a temporary folder (never
in the repository), checks that the package is the version asked for, and copies the
two files the page loads:

- ``ort.wasm.bundle.min.mjs``: the JavaScript API with the WASM glue bundled in (an
  ES module; the CPU backend only: no WebGL, no WebGPU);
- ``ort-wasm-simd-threaded.wasm``: the runtime it fetches (SIMD; the page sets one
  thread, so no worker and no cross-origin isolation is needed).

It checks that the bundle names no other ``.wasm`` file, and writes ``LICENSE`` (the
package is MIT; npm's tarball carries no licence file, so the text is onnxruntime's
own LICENSE, Copyright (c) Microsoft Corporation) and ``VERSION.json`` (package,
version, tarball sha512 integrity, sha256 of each file, date). Files of an earlier
version are removed, so the folder holds exactly one version.

Usage (from the repository root; needs ``npm`` on PATH, which a pip user never does)::

    python tools/vendor_onnxruntime_web.py 1.30.0
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VENDOR = REPO_ROOT / "lettercnn" / "web" / "vendor"
PACKAGE = "onnxruntime-web"
# The files the page loads, from the package's dist/ folder.
FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")
LICENSE_TEXT = """MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def npm_pack(version: str, folder: Path) -> tuple[Path, str]:
    """``npm pack`` the pinned package into ``folder``; returns the extracted package and its integrity."""
    result = subprocess.run(
        ["npm", "pack", "--json", f"{PACKAGE}@{version}"], cwd=folder, check=True, capture_output=True, text=True
    )
    (info,) = json.loads(result.stdout)
    with tarfile.open(folder / info["filename"]) as archive:
        archive.extractall(folder, filter="data")
    return folder / "package", info["integrity"]


def vendor(version: str, out: Path = VENDOR) -> dict[str, object]:
    """Copy the pinned version's files into ``out``; returns what VERSION.json records."""
    with tempfile.TemporaryDirectory() as tmp:
        package, integrity = npm_pack(version, Path(tmp))
        meta = json.loads((package / "package.json").read_text())
        if meta["version"] != version:
            raise SystemExit(f"npm gave {PACKAGE} {meta['version']}, not {version}")
        bundle = (package / "dist" / FILES[0]).read_text(encoding="utf-8")
        wanted = set(re.findall(r"ort-wasm[\w.-]*\.wasm", bundle))
        if wanted != {FILES[1]}:
            raise SystemExit(f"{FILES[0]} of {version} loads {sorted(wanted)}, expected {FILES[1]}")
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for name in FILES:
            shutil.copyfile(package / "dist" / name, out / name)
    (out / "LICENSE").write_text(LICENSE_TEXT)
    record = {
        "package": PACKAGE,
        "version": version,
        "license": meta.get("license", ""),
        "source": f"npm pack {PACKAGE}@{version} (dist/)",
        "integrity": integrity,
        "files": {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in FILES},
        "vendored": datetime.date.today().isoformat(),
    }
    (out / "VERSION.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", help="the onnxruntime-web version to vendor, e.g. 1.30.0")
    parser.add_argument("--out", type=Path, default=VENDOR, help=f"where to write (default: {VENDOR})")
    args = parser.parse_args(argv)
    record = vendor(args.version, args.out)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    sys.exit(main())
