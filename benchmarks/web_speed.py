"""Time per letter in the browser, from the page's own clock, in headless Chromium.

The self-test (``index.html?selftest=1``) times each drawn letter it reads, from the
canvas pixels to the probabilities (the page's JS preprocessing, then onnxruntime-web).
Under ``--virtual-time-budget`` (what the tests use) Chromium's clock stands still,
so this script runs Chromium on the real clock instead and reads the result over the
DevTools pipe (:mod:`lettercnn.web.chromium`). Run:

    python benchmarks/web_speed.py [--model M] [--int8] [--runs 3]

It builds the site in a temporary folder, serves it on 127.0.0.1 and prints one line
per run and the median: ms per letter, split into preprocessing and model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from lettercnn.web import build_site, serve
from lettercnn.web.chromium import Browser, find_chromium

READ_RESULT = "document.getElementById('selftest')?.textContent || ''"
KEYS = ("ms_per_letter", "ms_preprocess", "ms_model")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="an .onnx (default: the shipped model)")
    parser.add_argument("--int8", action="store_true", help="its int8 twin")
    parser.add_argument("--runs", type=int, default=3, help="Chromium runs (the median is reported)")
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        site = build_site(Path(tmp) / "site", args.model, int8=args.int8)
        server = serve(site.folder, 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html?selftest=1"
        try:
            for run in range(args.runs):
                with Browser(url, chromium=chromium) as browser:
                    result = json.loads(browser.wait_for(READ_RESULT))
                results.append(result)
                print(
                    f"run {run + 1}: ok={result['ok']} cases={result['cases']} agree={result['agree']} "
                    f"max_abs_diff={result['max_abs_diff']:.2e}: {result['ms_per_letter']:.2f} ms per letter "
                    f"(preprocessing {result['ms_preprocess']:.2f}, model {result['ms_model']:.2f})"
                )
        finally:
            server.shutdown()
            server.server_close()
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True).stdout.strip()
    median = {key: statistics.median(r[key] for r in results) for key in KEYS}
    print(
        f"{site.model.name} ({site.total_bytes / 1e6:.1f} MB site), {version}, {os.cpu_count()} cores: "
        f"median {median['ms_per_letter']:.2f} ms per letter (preprocessing {median['ms_preprocess']:.2f}, "
        f"model {median['ms_model']:.2f}) over {args.runs} runs of {results[0]['drawn_cases']} drawn letters"
    )


if __name__ == "__main__":
    main()
