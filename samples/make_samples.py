"""Generate the sample images in this folder (and its README.md).

    python samples/make_samples.py            # rewrites samples/
    python samples/make_samples.py OUT_DIR    # writes elsewhere

Deterministic: every sample draws from its own generator seeded by its file name, so
the same OpenCV writes the same bytes (other OpenCV builds draw other fonts: the
``FONT_HERSHEY_*`` faces are Hershey strokes in OpenCV 4 and TrueType outlines in
OpenCV 5). numpy and OpenCV only; each file is written atomically, well under 60 KB.

A sample is built in layers, like a photo: a background (paper or board, with
texture), the ink (a letter drawn with ``cv2.putText`` as a coverage mask, its stroke
width set to a pen's or a marker's), then the camera (uneven light, perspective,
blur, noise, JPEG).
"""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lettercnn.data.render import text_coverage
from lettercnn.fileio import write_bytes, write_text

SAMPLES_DIR = Path(__file__).resolve().parent
SEED = 20240617  # any fixed number; changing it changes every sample
SIDE = 256  # single-letter images are SIDE x SIDE: small files, plenty for a 32x32 glyph
JPEG_QUALITY = 85  # an ordinary phone/camera JPEG
HEAVY_JPEG_QUALITY = 8  # blocky enough to see the 8x8 blocks around the strokes
# Letters fill about this fraction of the image height, as in a photo framed on one letter.
LETTER_FILL = 0.6
# putText thickness: 1 draws OpenCV 5's regular face (4.x: 1-pixel Hershey strokes);
# the stroke width is then set by :func:`with_stroke`, the same in every build.
REGULAR = 1
# Brightness falls by this fraction across r_uneven_light: clearly uneven, and still
# within what the default Otsu threshold copes with (from ~0.3 a thin letter on
# textured paper needs ``--threshold adaptive``).
UNEVEN_LIGHT = 0.2

Image = np.ndarray  # float32 (H, W, 3) BGR in [0, 255] while being built
Rng = np.random.Generator


@dataclass(frozen=True)
class Sample:
    """One sample file: its name, what it shows, and how it is made."""

    name: str
    description: str
    make: Callable[[Rng], np.ndarray]  # the finished uint8 image, gray or BGR


# --- layers --------------------------------------------------------------------------


def stroke_width(coverage: np.ndarray) -> float:
    """Typical stroke width, pixels: twice the median distance to the edge along the ridges."""
    inside = (coverage > 0.5).astype(np.uint8)
    distance = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    ridge = (distance > 0) & (distance >= cv2.dilate(distance, np.ones((3, 3), np.uint8)))
    return 2.0 * float(np.median(distance[ridge])) if ridge.any() else 0.0


def with_stroke(coverage: np.ndarray, width: float) -> np.ndarray:
    """The same letter drawn with strokes about ``width`` pixels wide (a pen, a marker).

    Fonts differ between OpenCV builds (4.x draws Hershey strokes ``thickness`` wide,
    5.x fills TrueType outlines whatever the thickness), so the weight is set here,
    by growing or eroding the coverage, not by ``thickness``.
    """
    radius = round((width - stroke_width(coverage)) / 2)
    if radius == 0:
        return coverage
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1, 2 * abs(radius) + 1))
    return cv2.dilate(coverage, kernel) if radius > 0 else cv2.erode(coverage, kernel)


def surface(shape: tuple[int, int], color: tuple[float, float, float], rng: Rng, grain: float, blotch: float) -> Image:
    """A flat colour with texture: fine grain (paper fibres, board dust) and soft blotches."""
    height, width = shape
    coarse = cv2.resize(rng.normal(0.0, 1.0, (8, 8)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.normal(0.0, 1.0, shape).astype(np.float32), (0, 0), 0.7)
    texture = blotch * coarse + grain * fine
    return np.asarray(color, np.float32)[None, None, :] + texture[:, :, None]


def lay_ink(background: Image, coverage: np.ndarray, color: tuple[float, float, float]) -> Image:
    """Ink of ``color`` over the background where ``coverage`` says (alpha blending)."""
    alpha = coverage[:, :, None]
    return background * (1.0 - alpha) + np.asarray(color, np.float32)[None, None, :] * alpha


def chalky(coverage: np.ndarray, rng: Rng) -> np.ndarray:
    """Chalk leaves grainy strokes: holes where the board's grain did not take it."""
    grain = cv2.GaussianBlur(rng.uniform(0.0, 1.0, coverage.shape).astype(np.float32), (0, 0), 0.8)
    return coverage * np.clip(0.35 + 1.6 * (grain - 0.35), 0.0, 1.0)


def uneven_light(image: Image, rng: Rng, strength: float) -> Image:
    """A light from one side: a linear gradient of brightness with a soft vignette."""
    height, width = image.shape[:2]
    angle = rng.uniform(0.0, 2.0 * np.pi)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    along = (np.cos(angle) * (cols / width - 0.5) + np.sin(angle) * (rows / height - 0.5)) + 0.5
    radius = np.hypot(cols / width - 0.5, rows / height - 0.5)
    light = (1.0 - strength) + strength * along - 0.25 * strength * radius
    return image * light[:, :, None]


def perspective(image: Image, rng: Rng, amount: float, border: tuple[float, float, float]) -> Image:
    """The page seen at an angle: each corner moves by up to ``amount`` of the side."""
    height, width = image.shape[:2]
    corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    shift = rng.uniform(-amount, amount, (4, 2)).astype(np.float32) * np.float32([width, height])
    matrix = cv2.getPerspectiveTransform(corners, corners + shift)
    return cv2.warpPerspective(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=border
    )


def rotate(image: Image, degrees: float, border: tuple[float, float, float]) -> Image:
    """Rotate about the centre, filling the corners with ``border``."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def sensor_noise(image: Image, rng: Rng, sigma: float) -> Image:
    """Per-pixel camera noise."""
    return image + rng.normal(0.0, sigma, image.shape).astype(np.float32)


def to_gray(image: Image) -> np.ndarray:
    """uint8 gray: smaller files for samples that have no colour to show."""
    return cv2.cvtColor(to_bgr(image), cv2.COLOR_BGR2GRAY)


def to_bgr(image: Image) -> np.ndarray:
    """uint8 BGR, clipped."""
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


# --- the samples -----------------------------------------------------------------------

PAPER = (226.0, 236.0, 240.0)  # warm white, BGR
PEN = (40.0, 32.0, 30.0)  # near-black ballpoint
BLUE_PEN = (150.0, 60.0, 25.0)
BOARD = (52.0, 66.0, 48.0)  # a green-grey school board
CHALK = (228.0, 232.0, 230.0)
SQUARE = (SIDE, SIDE)


def letter(
    text: str, font: int, stroke: float, fill: float = LETTER_FILL, shape: tuple[int, int] = SQUARE
) -> np.ndarray:
    """Coverage of a letter (or word) with strokes ``stroke`` pixels wide."""
    return with_stroke(text_coverage(text, shape, font, REGULAR, fill), stroke)


def a_paper(rng: Rng) -> np.ndarray:
    coverage = letter("A", cv2.FONT_HERSHEY_SIMPLEX, 14)
    return to_gray(lay_ink(surface(SQUARE, PAPER, rng, grain=1.5, blotch=2.0), coverage, PEN))


def r_uneven_light(rng: Rng) -> np.ndarray:
    coverage = letter("r", cv2.FONT_HERSHEY_DUPLEX, 14)
    page = lay_ink(surface(SQUARE, PAPER, rng, grain=4.0, blotch=6.0), coverage, PEN)
    return to_bgr(sensor_noise(uneven_light(page, rng, strength=UNEVEN_LIGHT), rng, 3.0))


def k_dark_board(rng: Rng) -> np.ndarray:
    coverage = chalky(letter("K", cv2.FONT_HERSHEY_TRIPLEX, 16), rng)
    board = surface(SQUARE, BOARD, rng, grain=3.0, blotch=5.0)
    dust = cv2.GaussianBlur(coverage, (0, 0), 9.0) * 0.25  # smudged chalk dust around the strokes
    return to_gray(lay_ink(lay_ink(board, dust, CHALK), coverage, CHALK))


def e_blur(rng: Rng) -> np.ndarray:
    coverage = letter("e", cv2.FONT_HERSHEY_COMPLEX, 12)
    page = lay_ink(surface(SQUARE, PAPER, rng, grain=2.0, blotch=3.0), coverage, PEN)
    return to_bgr(cv2.GaussianBlur(page, (0, 0), 3.5))


def m_perspective(rng: Rng) -> np.ndarray:
    coverage = letter("M", cv2.FONT_HERSHEY_DUPLEX, 11, fill=0.5)
    page = lay_ink(surface(SQUARE, PAPER, rng, grain=1.5, blotch=3.0), coverage, PEN)
    return to_gray(uneven_light(perspective(page, rng, 0.12, PAPER), rng, strength=0.3))


def g_jpeg(rng: Rng) -> np.ndarray:
    coverage = letter("g", cv2.FONT_HERSHEY_SIMPLEX, 12)
    return to_bgr(lay_ink(surface(SQUARE, PAPER, rng, grain=2.0, blotch=3.0), coverage, PEN))


def b_marker(rng: Rng) -> np.ndarray:
    coverage = letter("B", cv2.FONT_HERSHEY_SIMPLEX, 32)
    return to_gray(lay_ink(surface(SQUARE, PAPER, rng, grain=1.0, blotch=2.0), coverage, (20.0, 20.0, 20.0)))


def t_thin_pen(rng: Rng) -> np.ndarray:
    coverage = letter("t", cv2.FONT_HERSHEY_COMPLEX, 6) * 0.8  # a light stroke, not full ink
    return to_gray(lay_ink(surface(SQUARE, PAPER, rng, grain=1.5, blotch=2.0), coverage, PEN))


def s_blue_ink(rng: Rng) -> np.ndarray:
    page = surface(SQUARE, PAPER, rng, grain=1.5, blotch=2.0)
    for row in range(20, SIDE, 32):  # the faint blue rules of a notebook page
        cv2.line(page, (0, row), (SIDE - 1, row), (215.0, 200.0, 180.0), 1, cv2.LINE_AA)
    return to_bgr(lay_ink(page, letter("S", cv2.FONT_HERSHEY_TRIPLEX, 10), BLUE_PEN))


def h_script(rng: Rng) -> np.ndarray:
    coverage = letter("h", cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 8)
    return to_gray(lay_ink(surface(SQUARE, PAPER, rng, grain=1.5, blotch=2.0), coverage, PEN))


def d_rotated(rng: Rng) -> np.ndarray:
    coverage = letter("D", cv2.FONT_HERSHEY_DUPLEX, 12, fill=0.5)
    page = lay_ink(surface(SQUARE, PAPER, rng, grain=1.5, blotch=2.0), coverage, PEN)
    return to_gray(rotate(page, -14.0, PAPER))


def w_photo(rng: Rng) -> np.ndarray:
    """Everything at once: a page at an angle under a side light, soft focus, noise, JPEG."""
    coverage = letter("W", cv2.FONT_HERSHEY_SIMPLEX, 11, fill=0.45)
    page = lay_ink(surface(SQUARE, PAPER, rng, grain=4.0, blotch=6.0), coverage, PEN)
    page = perspective(page, rng, 0.05, (70.0, 75.0, 80.0))  # the table shows at an edge
    page = cv2.GaussianBlur(uneven_light(page, rng, strength=0.3), (0, 0), 1.2)
    return to_bgr(sensor_noise(page, rng, 4.0))


def z_screen(rng: Rng) -> np.ndarray:
    """A bright letter on a dark screen: light on dark without chalk's grain."""
    coverage = letter("Z", cv2.FONT_HERSHEY_SIMPLEX, 14)
    glow = cv2.GaussianBlur(coverage, (0, 0), 4.0) * 0.35
    screen = surface(SQUARE, (25.0, 22.0, 20.0), rng, grain=1.0, blotch=1.0)
    return to_gray(lay_ink(lay_ink(screen, glow, (120.0, 230.0, 140.0)), coverage, (200.0, 255.0, 210.0)))


def x_small(rng: Rng) -> np.ndarray:
    """A thumbnail: 40 x 40 pixels, as from a far-away camera."""
    coverage = letter("x", cv2.FONT_HERSHEY_SIMPLEX, 20)
    page = lay_ink(surface(SQUARE, PAPER, rng, grain=1.5, blotch=2.0), coverage, PEN)
    return to_gray(cv2.resize(page, (40, 40), interpolation=cv2.INTER_AREA))


WORD = "Jig"  # a word with a dotted letter: the dot must stay with its j and i
WORD_SHAPE = (140, 360)


def word_photo(rng: Rng) -> np.ndarray:
    coverage = letter(WORD, cv2.FONT_HERSHEY_DUPLEX, 8, fill=0.62, shape=WORD_SHAPE)
    page = lay_ink(surface(WORD_SHAPE, PAPER, rng, grain=2.0, blotch=3.0), coverage, PEN)
    return to_gray(uneven_light(page, rng, strength=0.3))


SAMPLES: tuple[tuple[Sample, int], ...] = (  # (sample, JPEG quality or 0 for PNG)
    (Sample("letters/A_paper.png", "dark ink on white paper", a_paper), 0),
    (
        Sample("letters/r_uneven_light.jpg", "lower case r on textured paper lit from one side", r_uneven_light),
        JPEG_QUALITY,
    ),
    (Sample("letters/K_dark_board.png", "chalk on a dark board: light on dark, grainy strokes, dust", k_dark_board), 0),
    (Sample("letters/e_blur.jpg", "lower case e, out of focus", e_blur), JPEG_QUALITY),
    (Sample("letters/M_perspective.png", "a page seen at an angle (perspective)", m_perspective), 0),
    (Sample("letters/g_jpeg.jpg", "lower case g, heavy JPEG compression", g_jpeg), HEAVY_JPEG_QUALITY),
    (Sample("letters/B_marker.png", "thick marker", b_marker), 0),
    (Sample("letters/t_thin_pen.png", "lower case t, thin light pen", t_thin_pen), 0),
    (Sample("letters/S_blue_ink.png", "blue ink on a ruled notebook page", s_blue_ink), 0),
    (Sample("letters/h_script.png", "lower case h in a script (handwriting-like) font", h_script), 0),
    (Sample("letters/D_rotated.png", "a page turned by 14 degrees", d_rotated), 0),
    (Sample("letters/W_photo.jpg", "a photo: angle, side light, soft focus, noise, JPEG", w_photo), JPEG_QUALITY),
    (Sample("letters/Z_screen.png", "a bright letter on a dark screen", z_screen), 0),
    (Sample("letters/x_small.png", "lower case x, a 40 x 40 thumbnail", x_small), 0),
    (Sample(f"words/word_{WORD}.png", f"the word {WORD!r} on paper, for `letters recognize --word`", word_photo), 0),
)


def encode(image: np.ndarray, name: str, jpeg_quality: int) -> bytes:
    """PNG (max compression) or JPEG bytes of ``image``."""
    if jpeg_quality:
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    else:
        ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {name}")
    return data.tobytes()


def readme() -> str:
    """The folder's README.md: what each file shows, and that the script made them."""
    rows = "\n".join(f"| `{sample.name}` | {sample.description} |" for sample, _ in SAMPLES)
    return (
        "# Sample images\n\n"
        "Generated by `python samples/make_samples.py` (deterministic; numpy and OpenCV's\n"
        "`FONT_HERSHEY_*` fonts; do not edit by hand, change the script and rerun it).\n"
        "Single letters are in `letters/`, named for their letter; the word image in\n"
        "`words/` is for `letters recognize --word`.\n\n"
        "```bash\n"
        "letters recognize samples/letters\n"
        "letters recognize samples/words --word\n"
        "```\n\n"
        "| file | shows |\n| --- | --- |\n"
        f"{rows}\n"
    )


def main(out_dir: str | Path = SAMPLES_DIR) -> list[Path]:
    """Write every sample and the README into ``out_dir``.

    Args:
        out_dir: the folder to write into (created if missing).

    Returns:
        The paths written, samples first, README.md last.
    """
    folder = Path(out_dir)
    written = []
    for sample, jpeg_quality in SAMPLES:
        rng = np.random.default_rng((SEED, zlib.crc32(Path(sample.name).name.encode("ascii"))))
        path = folder / sample.name
        write_bytes(path, encode(sample.make(rng), sample.name, jpeg_quality))
        written.append(path)
    write_text(folder / "README.md", readme())
    return [*written, folder / "README.md"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Generate the sample images.")
    parser.add_argument("out_dir", nargs="?", default=str(SAMPLES_DIR), help="where to write (default: %(default)s)")
    for path in main(parser.parse_args().out_dir):
        print(f"{path}  {path.stat().st_size / 1024:.1f} KB")
