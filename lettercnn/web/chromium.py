"""Headless Chromium on the real clock, driven over its DevTools pipe (standard library only).

``chromium --headless --dump-dom --virtual-time-budget=...`` (what the tests use for
the self-test) runs the page on a virtual clock that stands still while scripts run, and
plays no webcam. What needs the real clock -- the page's own timing
(``benchmarks/web_speed.py``), the webcam mode on Chromium's fake camera (the tests) --
goes through ``--remote-debugging-pipe`` instead: JSON messages, each ended by a NUL
byte, on file descriptors 3 (to the browser) and 4 (from it).

    >>> with Browser(url) as browser:
    ...     browser.wait_for("document.getElementById('selftest').textContent")
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import Any

# Debian's package first, then the names other systems use.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Chromium's fake webcam (a moving pie and a clock) and no permission prompt.
FAKE_CAMERA = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")


def find_chromium() -> str | None:
    """The Chromium executable on PATH, or None."""
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def headless_args(chromium: str, profile: str) -> list[str]:
    """Chromium headless with a throwaway profile; without its sandbox as root (it refuses to run there)."""
    args = [
        chromium,
        "--headless",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ]
    return [*args, "--no-sandbox"] if os.geteuid() == 0 else args


class Browser:
    """One headless Chromium on ``url``, its page attached for :meth:`evaluate`.

    Args:
        url: the page to open.
        extra: more Chromium flags (e.g. :data:`FAKE_CAMERA`).
        chromium: the executable (default: :func:`find_chromium`).

    Raises:
        FileNotFoundError: no Chromium.
    """

    def __init__(self, url: str, extra: Sequence[str] = (), chromium: str | None = None) -> None:
        executable = chromium or find_chromium()
        if executable is None:
            raise FileNotFoundError(f"no Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)})")
        self._profile = tempfile.TemporaryDirectory(prefix="lettercnn-chromium-")
        to_browser, self._to_browser = os.pipe()
        self._from_browser, from_browser = os.pipe()

        def as_fds_3_and_4() -> None:
            # Out of the way first: a pipe may itself be fd 3 or 4, and dup2 onto
            # itself would leave it close-on-exec.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        args = [*headless_args(executable, self._profile.name), "--remote-debugging-pipe", *extra, url]
        self.process = subprocess.Popen(
            args, preexec_fn=as_fds_3_and_4, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0
        try:
            targets = self.call("Target.getTargets")["targetInfos"]
            page = next(t for t in targets if t["type"] == "page")
            self._session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        except BaseException:
            self.close()
            raise

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """One DevTools request; its result (events in between are skipped).

        Raises:
            RuntimeError: the browser answered with an error, or closed the pipe.
        """
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, expression: str) -> Any:
        """A JavaScript expression's value in the page (JSON-able values only)."""
        return self.call("Runtime.evaluate", self._session, expression=expression, returnByValue=True)["result"].get(
            "value"
        )

    def wait_for(self, expression: str, timeout: float = 120.0, poll: float = 0.25) -> Any:
        """Poll ``expression`` until it is truthy; its value.

        Raises:
            TimeoutError: still falsy after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(poll)
        raise TimeoutError(f"{expression} stayed empty for {timeout:.0f} s")

    def screenshot(self) -> bytes:
        """The page as PNG bytes."""
        import base64

        return base64.b64decode(self.call("Page.captureScreenshot", self._session, format="png")["data"])

    def close(self) -> None:
        try:
            self.call("Browser.close")
            self.process.wait(timeout=30)
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self._to_browser)
            os.close(self._from_browser)
            self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
