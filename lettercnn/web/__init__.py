"""The browser page: the same ONNX file on onnxruntime-web, written out by ``letters web``.

    >>> from lettercnn.web import build_site
    >>> site = build_site("site")               # index.html, the JS, model.onnx, vendor/, selftest/
    >>> site.total_bytes                        # the model plus the WASM runtime, mostly

The site is static and self-contained: it loads nothing from the internet. The page
(``static/``) reads the labels, the input spec and the calibration from the model's
own metadata, as :class:`~lettercnn.runtime.Recognizer` does, and runs the model with
onnxruntime-web's single-threaded WASM backend (``vendor/``, vendored by
``tools/vendor_onnxruntime_web.py``), so no cross-origin isolation is needed.

``selftest/`` holds what ``index.html?selftest=1`` checks the browser against:
32x32 glyphs with onnxruntime's probabilities for them, and drawn-letter images with
what ``letters recognize`` reads in them (:mod:`lettercnn.web.selftest`).

Runtime side only: numpy, OpenCV and onnxruntime; never torch.
"""

from lettercnn.web.site import SITE_FILES, STATIC, VENDOR, Site, build_site, ort_web_version, serve

__all__ = ["SITE_FILES", "STATIC", "VENDOR", "Site", "build_site", "ort_web_version", "serve"]
