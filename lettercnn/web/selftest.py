"""The cases ``index.html?selftest=1`` checks the browser against, computed in Python.

Two kinds, one per letter each (``2 * 26`` for an A-Z model), and three drawn
pages more (a letter cut off, a stroke off the page's edge, a plain bar):

- ``tensor``: a canonical 32x32 glyph (uint8, base64) and onnxruntime's calibrated
  probabilities for it (:meth:`Recognizer.probabilities`): the page normalises it
  with the model's input spec and runs onnxruntime-web, so the two runtimes and the
  calibration are compared on the same input.
- ``drawn``: a PNG of a letter drawn in strokes (OpenCV's Hershey faces: black pen on
  white, the page's own canvas), and what ``letters recognize`` reads in it
  (:meth:`Recognizer.read_file`: its 32x32 glyph and all probabilities): the page
  reads the PNG through its own JS preprocessing, so that is compared too.

A case whose top two probabilities (or whose best and the "?" threshold) lie within
:data:`MIN_MARGIN` is drawn again: a near tie says nothing about agreement, and
float rounding between runtimes may flip it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from lettercnn import preprocess
from lettercnn.fileio import write_bytes, write_json
from lettercnn.runtime import Recognizer

SEED = 16
# Letters are drawn on a page this big (width, height): not square, so the crop and
# the fit keep an aspect ratio; below the preprocessing's analysis size.
PAGE = (200, 160)
FACES = (
    cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX,
)  # fmt: skip
# Letters as a hand draws them on the pad: from about 30 pixels high to most of the
# page, clear of its edges.
SCALES = (2.5, 4.0)
EDGE = 12
MIN_MARGIN = 0.02
TRIES = 20
# What the page must meet (README, issue 16): every answer equal, probabilities this close.
MAX_ABS_DIFF = 1e-3


def draw_letter(letter: str, rng: np.random.Generator) -> np.ndarray:
    """A letter drawn in pen strokes: black, anti-aliased, on a white uint8 page."""
    width, height = PAGE
    face = int(rng.choice(FACES))
    scale = float(rng.uniform(*SCALES))
    thickness = max(1, round(scale * rng.uniform(1.5, 3.5)))
    (text_w, text_h), base = cv2.getTextSize(letter, face, scale, thickness)
    x = int(rng.integers(EDGE, max(EDGE + 1, width - text_w - EDGE)))
    y = int(rng.integers(text_h + EDGE, max(text_h + EDGE + 1, height - base - EDGE)))
    page = np.full((height, width), 255, np.uint8)
    cv2.putText(page, letter, (x, y), face, scale, 0, thickness, cv2.LINE_AA)
    return page


def draw_cut_off(rng: np.random.Generator) -> np.ndarray:
    """A big letter drawn half off the page's right edge: no whole glyph, answered '?'."""
    width, height = PAGE
    page = np.full((height, width), 255, np.uint8)
    (text_w, text_h), _ = cv2.getTextSize("K", cv2.FONT_HERSHEY_SIMPLEX, SCALES[1], 10)
    x, y = width - text_w // 2, (height + text_h) // 2 + int(rng.integers(-10, 11))
    cv2.putText(page, "K", (x, y), cv2.FONT_HERSHEY_SIMPLEX, SCALES[1], 0, 10, cv2.LINE_AA)
    return page


def draw_edge_stroke(rng: np.random.Generator) -> np.ndarray:
    """A whole letter with a pen stroke from beside it off the page's right edge: the
    second look (the parts clear of the edge) finds the letter."""
    width, height = PAGE
    page = np.full((height, width), 255, np.uint8)
    (text_w, text_h), _ = cv2.getTextSize("R", cv2.FONT_HERSHEY_SIMPLEX, SCALES[1], 10)
    x, y = width - text_w - 3 * EDGE, (height + text_h) // 2
    cv2.putText(page, "R", (x, y), cv2.FONT_HERSHEY_SIMPLEX, SCALES[1], 0, 10, cv2.LINE_AA)
    right = int(np.flatnonzero((page < 128).any(axis=0))[-1])  # the letter's last inked column
    start = (right + 5, y - text_h // 2 + int(rng.integers(-10, 11)))  # a hair apart: taken as part of it
    cv2.line(page, start, (width - 1, start[1] + int(rng.integers(-30, 31))), 0, 4, cv2.LINE_AA)
    return page


def draw_bar(rng: np.random.Generator) -> np.ndarray:
    """A plain upright bar, as many faces draw a capital I and a lower-case l: both sides
    answer the likelier of the pair, not '?' (``calibration.answered``)."""
    width, height = PAGE
    page = np.full((height, width), 255, np.uint8)
    x, top = width // 2 + int(rng.integers(-20, 21)), int(rng.integers(EDGE, 40))
    cv2.line(page, (x, top), (x, height - int(rng.integers(EDGE, 40))), 0, int(rng.integers(8, 13)), cv2.LINE_AA)
    return page


def _clear(recognizer: Recognizer, probabilities: np.ndarray) -> bool:
    """No near tie: the top two apart, and the best (and the top two together, which
    may answer a look-alike pair) away from the '?' threshold."""
    second, best = np.sort(probabilities)[-2:]
    threshold = recognizer.min_confidence
    return best - second >= MIN_MARGIN and min(abs(best - threshold), abs(best + second - threshold)) >= MIN_MARGIN


def _b64(glyph: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(glyph, np.uint8).tobytes()).decode("ascii")


def _answer(recognizer: Recognizer, probabilities: np.ndarray) -> str:
    return recognizer.decide(probabilities[None], top_k=1)[0].letter


def tensor_cases(recognizer: Recognizer, rng: np.random.Generator) -> list[dict[str, object]]:
    """One canonical glyph per label, with onnxruntime's probabilities and the answer."""
    cases = []
    for label in recognizer.labels:
        for _ in range(TRIES):
            glyph = recognizer.glyph(draw_letter(label[:1], rng))
            probabilities = recognizer.probabilities(preprocess.normalize(glyph, recognizer.spec)[None])[0]
            if glyph.any() and _clear(recognizer, probabilities):
                break
        cases.append(
            {
                "name": f"tensor-{label}",
                "glyph": _b64(glyph),
                "probabilities": [float(p) for p in probabilities],
                "answer": _answer(recognizer, probabilities),
            }
        )
    return cases


def drawn_cases(recognizer: Recognizer, rng: np.random.Generator, folder: Path) -> tuple[list[dict], dict[str, int]]:
    """One drawn-letter PNG per label, with what ``letters recognize`` reads in it."""
    cases, written = [], {}
    for index, label in enumerate(recognizer.labels):
        name = f"drawn-{index:02d}.png"
        case, written[name] = _drawn_clear(recognizer, folder, name, lambda letter=label[:1]: draw_letter(letter, rng))
        cases.append(case)
    # A letter running off the page: both sides find no whole glyph and answer '?'.
    # A stroke running from beside a whole letter off the page: both sides take the letter alone.
    for name, page in (("drawn-cut-off.png", draw_cut_off(rng)), ("drawn-edge-stroke.png", draw_edge_stroke(rng))):
        case, _, written[name] = _drawn(recognizer, folder, name, page)
        cases.append(case)
    # A plain bar: I or l; both sides answer the likelier of the two.
    case, written["drawn-bar.png"] = _drawn_clear(recognizer, folder, "drawn-bar.png", lambda: draw_bar(rng))
    cases.append(case)
    return cases, written


def _drawn_clear(
    recognizer: Recognizer, folder: Path, name: str, draw: Callable[[], np.ndarray]
) -> tuple[dict[str, object], int]:
    """:func:`_drawn` of pages from ``draw`` until one reads without a near tie (at most
    :data:`TRIES`; a blank page has no probabilities: drawn again): its case and PNG size."""
    for _ in range(TRIES):
        case, probabilities, size = _drawn(recognizer, folder, name, draw())
        if _clear(recognizer, probabilities):
            break
    return case, size


def _drawn(
    recognizer: Recognizer, folder: Path, name: str, page: np.ndarray
) -> tuple[dict[str, object], np.ndarray, int]:
    """Write ``page`` as the PNG ``name`` and read it as ``letters recognize`` does: its
    case, the probability of each label (all 0 where no glyph is found) and the PNG's size."""
    data = preprocess.encode_png(page)
    write_bytes(folder / name, data)
    result = recognizer.read_file(folder / name, top_k=len(recognizer.labels))
    (prediction,) = result.predictions
    by_label = dict(prediction.top_k)
    probabilities = np.array([by_label.get(label, 0.0) for label in recognizer.labels])
    return _drawn_case(name, result.glyphs[0], probabilities, prediction.letter), probabilities, len(data)


def _drawn_case(name: str, glyph: np.ndarray, probabilities: np.ndarray, answer: str) -> dict[str, object]:
    return {
        "name": name.removesuffix(".png"),
        "file": name,
        "glyph": _b64(glyph),
        "probabilities": [float(p) for p in probabilities],
        "answer": answer,
    }


def write_cases(recognizer: Recognizer, folder: Path, seed: int = SEED) -> tuple[dict[str, int], tuple[int, int]]:
    """Write ``cases.json`` and the drawn PNGs into ``folder``.

    Returns:
        The files written (name: bytes), and the counts of (tensor, drawn) cases.
    """
    rng = np.random.default_rng(seed)
    tensor = tensor_cases(recognizer, rng)
    drawn, written = drawn_cases(recognizer, rng, folder)
    cases = {
        "labels": recognizer.labels,
        "max_abs_diff": MAX_ABS_DIFF,
        "temperature": recognizer.temperature,
        "min_confidence": recognizer.min_confidence,
        "tensor": tensor,
        "drawn": drawn,
    }
    write_json(folder / "cases.json", cases)
    written["cases.json"] = (folder / "cases.json").stat().st_size
    return written, (len(tensor), len(drawn))
