"""Time per letter in the browser, from the page's own clock, in headless Chromium.

The self-test (``index.html?selftest=1``) times each drawn letter it reads, from the
canvas pixels to the probabilities (the page's JS preprocessing, then onnxruntime-web).
Under ``--virtual-time-budget`` (what the tests use) Chromium's clock stands still,
so this script runs Chromium on the real clock instead and waits for the result
over the DevTools pipe (``--remote-debugging-pipe``: JSON messages on file
descriptors 3 and 4, standard library only). Run:

    python benchmarks/web_speed.py [--model M] [--int8] [--runs 3]

It builds the site in a temporary folder, serves it on 127.0.0.1 and prints one line
per run and the median: ms per letter, split into preprocessing and model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from lettercnn.web import build_site, serve

READ_RESULT = "document.getElementById('selftest')?.textContent || ''"
# How long one run may take: loading the model, compiling the WASM, 52 cases.
DEADLINE_S = 120.0


class DevTools:
    """The DevTools protocol over Chromium's pipe: requests by id, events skipped."""

    def __init__(self, chromium: str, url: str, profile: Path) -> None:
        to_browser, self._to_browser = os.pipe()
        self._from_browser, from_browser = os.pipe()

        def as_fds_3_and_4() -> None:
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        args = [chromium, "--headless", "--disable-gpu", "--remote-debugging-pipe", f"--user-data-dir={profile}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")
        self.process = subprocess.Popen(
            [*args, url], preexec_fn=as_fds_3_and_4, close_fds=False, stderr=subprocess.DEVNULL
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0

    def call(self, method: str, session: str | None = None, **params: object) -> dict:
        self._next_id += 1
        message: dict[str, object] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.call("Browser.close")
        finally:
            self.process.wait(timeout=30)


def one_run(chromium: str, url: str, profile: Path) -> dict:
    """The page's self-test result, once it is written."""
    browser = DevTools(chromium, url, profile)
    try:
        (page,) = [t for t in browser.call("Target.getTargets")["targetInfos"] if t["type"] == "page"]
        session = browser.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            found = browser.call("Runtime.evaluate", session, expression=READ_RESULT, returnByValue=True)
            text = found["result"].get("value", "")
            if text:
                return json.loads(text)
            time.sleep(0.25)
        raise RuntimeError(f"no self-test result within {DEADLINE_S:.0f} s")
    finally:
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="an .onnx (default: the shipped model)")
    parser.add_argument("--int8", action="store_true", help="its int8 twin")
    parser.add_argument("--runs", type=int, default=3, help="Chromium runs (the median is reported)")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("google-chrome")
    if chromium is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        site = build_site(Path(tmp) / "site", args.model, int8=args.int8)
        server = serve(site.folder, 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html?selftest=1"
        results = []
        for run in range(args.runs):
            result = one_run(chromium, url, Path(tmp) / f"profile-{run}")
            results.append(result)
            print(
                f"run {run + 1}: ok={result['ok']} cases={result['cases']} agree={result['agree']} "
                f"max_abs_diff={result['max_abs_diff']:.2e}: {result['ms_per_letter']:.2f} ms per letter "
                f"(preprocessing {result['ms_preprocess']:.2f}, model {result['ms_model']:.2f})"
            )
        server.shutdown()
        server.server_close()
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True).stdout.strip()
    median = {key: statistics.median(r[key] for r in results) for key in ("ms_per_letter", "ms_preprocess", "ms_model")}
    print(
        f"{site.model.name} ({site.total_bytes / 1e6:.1f} MB site), {version}, {os.cpu_count()} cores: "
        f"median {median['ms_per_letter']:.2f} ms per letter (preprocessing {median['ms_preprocess']:.2f}, "
        f"model {median['ms_model']:.2f}) over {args.runs} runs of {results[0]['drawn_cases']} drawn letters"
    )


if __name__ == "__main__":
    main()
