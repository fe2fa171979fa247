"""Rendering synthetic letters from fonts (numpy, OpenCV and matplotlib's FreeType; no torch).

Fonts come from what our dependencies already ship, plus any the user brings:

- matplotlib's bundled TrueType fonts (DejaVu Sans/Serif/Mono and their bold and
  oblique faces, STIX, the Computer Modern ``cm*`` faces), rasterised with
  :class:`matplotlib.ft2font.FT2Font` directly (no figures, ~50 us a glyph);
- OpenCV's Hershey stroke fonts, upright and italic, including the two script faces;
- ``.ttf``/``.otf``/``.ttc`` files in a user's ``fonts_dir``.

Every font must draw all 52 letters A-Z a-z as distinct, non-empty glyphs; symbol
fonts and placeholder fonts (LastResort) fail that test or are listed in
:data:`SYMBOL_FONTS`. Each glyph is rasterised once, tightly cropped, as a *template*.

A sample is then: template -> handwriting (stroke width, rotation, slant, aspect,
elastic bend) on a CANVAS x CANVAS image -> photo (paper and ink levels, either
polarity, uneven light, blur, noise, JPEG) -> :func:`lettercnn.preprocess.canonical`,
the runtime's own preprocessing. Sample ``i`` draws everything from
``np.random.default_rng((*seed, i))``, so a set is the same whatever the order,
the chunking or the number of worker processes.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lettercnn import preprocess
from lettercnn.data.augment import change_stroke, elastic_warp, fit_affine, linear_map, noise_patch, pixelate
from lettercnn.errors import FontError
from lettercnn.labels import LETTERS, NOT_A_LETTER, NUM_CLASSES

log = logging.getLogger(__name__)

CHARS = string.ascii_uppercase + string.ascii_lowercase
FONT_EXTENSIONS: tuple[str, ...] = (".ttf", ".otf", ".ttc")
# matplotlib fonts whose letter code points hold math symbols, not letters.
SYMBOL_FONTS = frozenset({"cmsy10", "cmex10"})
# A font whose 52 letters give fewer distinct bitmaps draws placeholders (LastResort
# draws one box for all). Sans-serif I and l may legitimately coincide.
MIN_DISTINCT_GLYPHS = 48
# Em size, pixels, at which TrueType templates are rasterised (FT2Font at 72 dpi).
TEMPLATE_EM_PX = 64
# Hershey templates: scale of OpenCV's font units and stroke width, pixels, giving
# letters about as tall as the TrueType ones.
HERSHEY_SCALE = 1.6
HERSHEY_THICKNESS = 3
HERSHEY_FACES: dict[str, int] = {
    "hershey-simplex": cv2.FONT_HERSHEY_SIMPLEX,
    "hershey-plain": cv2.FONT_HERSHEY_PLAIN,
    "hershey-duplex": cv2.FONT_HERSHEY_DUPLEX,
    "hershey-complex": cv2.FONT_HERSHEY_COMPLEX,
    "hershey-triplex": cv2.FONT_HERSHEY_TRIPLEX,
    "hershey-complex-small": cv2.FONT_HERSHEY_COMPLEX_SMALL,
    "hershey-script-simplex": cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    "hershey-script-complex": cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
}

# Side of the rendering canvas, pixels: twice the model input, so strokes, blur and
# noise are resampled by canonical as a photo's would be.
CANVAS = 64
# Range of the letter's longer side on the canvas, pixels. The top leaves room for
# the shift and the elastic bend inside a 5 px border: canonical takes big shapes that
# touch the border for frame edges.
GLYPH_SIDE = (30.0, 46.0)
SHIFT_PX = 4.0


@dataclass(frozen=True)
class FontBank:
    """The glyph templates of every usable font.

    Attributes:
        names: one per font, e.g. ``"DejaVuSans-Bold"`` or ``"hershey-script-simplex-italic"``.
        templates: ``templates[font][k]`` is the uint8 template of ``CHARS[k]``.
        categories: one per font: serif, sans-serif, monospace, display, handwriting,
            script, or ``"user"`` for a ``fonts_dir`` font.
        strokes: one per font: the Hershey face of a stroke font, whose every sample
            is drawn anew by :meth:`template`, or ``None``.
        paths: one per font: its TrueType file, or ``None`` (Hershey faces).
    """

    names: tuple[str, ...]
    templates: tuple[tuple[np.ndarray, ...], ...]
    categories: tuple[str, ...] = ()
    strokes: tuple[str | None, ...] = ()
    paths: tuple[Path | None, ...] = ()

    def template(self, font: int, char_index: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """The template of ``CHARS[char_index]`` in a font: drawn afresh by ``rng`` for a
        stroke font (a pen's wobble and width, :mod:`lettercnn.data.strokes`), else fixed."""
        face = self.strokes[font] if self.strokes else None
        if face is None or rng is None:
            return self.templates[font][char_index]
        from lettercnn.data.strokes import draw_letter, face_strokes

        return draw_letter(face_strokes(face)[char_index], rng)


def _crop(image: np.ndarray) -> np.ndarray:
    """Crop an image to its non-zero pixels (an empty image stays empty)."""
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    if rows.size == 0:
        return image[:0, :0]
    return np.ascontiguousarray(image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])


def _check_templates(name: str, templates: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Return the templates if every letter is drawn and they are distinct enough.

    Raises:
        FontError: an empty glyph or too many identical ones.
    """
    empty = [char for char, template in zip(CHARS, templates, strict=True) if template.size == 0 or template.max() == 0]
    if empty:
        raise FontError(f"{name} draws nothing for {', '.join(empty)}")
    distinct = {hashlib.blake2b(t.tobytes() + bytes(str(t.shape), "ascii")).digest() for t in templates}
    if len(distinct) < MIN_DISTINCT_GLYPHS:
        raise FontError(f"{name} draws only {len(distinct)} distinct glyphs for the 52 letters (placeholders?)")
    return tuple(templates)


def truetype_templates(path: str | Path) -> tuple[np.ndarray, ...]:
    """Rasterise the 52 letters of a TrueType/OpenType font.

    Args:
        path: a .ttf, .otf or .ttc file (first face).

    Returns:
        52 cropped uint8 templates in :data:`CHARS` order.

    Raises:
        FontError: FreeType cannot load the file, or a letter is missing or empty.
    """
    from matplotlib.ft2font import FT2Font  # heavy; only the renderer needs it

    try:
        font = FT2Font(str(path))
    except (RuntimeError, OSError, ValueError) as err:
        raise FontError(f"{Path(path).name} cannot be loaded: {err}") from None
    missing = [char for char in CHARS if font.get_char_index(ord(char)) == 0]
    if missing:
        raise FontError(f"{Path(path).name} has no glyph for {', '.join(missing)}")
    font.set_size(TEMPLATE_EM_PX, 72)
    templates = []
    for char in CHARS:
        font.clear()
        font.set_text(char, 0.0)
        font.draw_glyphs_to_bitmap(antialiased=True)
        templates.append(_crop(np.asarray(font.get_image(), dtype=np.uint8)))
    return _check_templates(Path(path).name, templates)


def hershey_templates(face: int) -> tuple[np.ndarray, ...]:
    """Draw the 52 letters in an OpenCV Hershey face (``FONT_ITALIC`` may be or-ed in).

    Returns:
        52 cropped uint8 templates in :data:`CHARS` order.

    Raises:
        FontError: a letter drew nothing.
    """
    templates = []
    for char in CHARS:
        (width, height), baseline = cv2.getTextSize(char, face, HERSHEY_SCALE, HERSHEY_THICKNESS)
        pad = 2 * HERSHEY_THICKNESS + height // 2  # italics and script swash lean out of the box
        canvas = np.zeros((height + baseline + 2 * pad, width + 2 * pad), dtype=np.uint8)
        origin = (pad, pad + height)
        cv2.putText(canvas, char, origin, face, HERSHEY_SCALE, 255, HERSHEY_THICKNESS, cv2.LINE_AA)
        templates.append(_crop(canvas))
    return _check_templates(f"Hershey face {face}", templates)


def bundled_font_files() -> list[Path]:
    """matplotlib's bundled TrueType fonts, symbol fonts excluded, sorted by name."""
    import matplotlib  # heavy; only the renderer needs it

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return sorted(path for path in folder.glob("*.ttf") if path.stem not in SYMBOL_FONTS)


def user_font_files(fonts_dir: str | Path) -> list[Path]:
    """Font files under ``fonts_dir`` (recursively), sorted.

    Raises:
        ValueError: ``fonts_dir`` is not a folder.
    """
    folder = Path(fonts_dir).expanduser()
    if not folder.is_dir():
        raise ValueError(f"fonts_dir {folder} is not a folder")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FONT_EXTENSIONS)


def _add_font(
    bank: _BankBuilder, name: str, category: str, templates: tuple[np.ndarray, ...], path: Path | None = None
) -> None:
    """Append a font unless an earlier one draws exactly the same letters.

    OpenCV builds differ: in some, ``FONT_ITALIC`` changes nothing and several Hershey
    faces draw alike; counting those twice would only overweight them.
    """
    digest = hashlib.blake2b(b"".join(t.tobytes() + bytes(str(t.shape), "ascii") for t in templates)).digest()
    if digest in bank.seen:
        log.debug("font %s duplicates an earlier font; skipped", name)
        return
    bank.seen.add(digest)
    bank.add(name, category, templates, path=path)


@dataclass
class _BankBuilder:
    """A font bank while it is being filled."""

    names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    templates: list[tuple[np.ndarray, ...]] = field(default_factory=list)
    strokes: list[str | None] = field(default_factory=list)
    paths: list[Path | None] = field(default_factory=list)
    seen: set[bytes] = field(default_factory=set)

    def add(
        self,
        name: str,
        category: str,
        templates: tuple[np.ndarray, ...],
        *,
        stroke: str | None = None,
        path: Path | None = None,
    ) -> None:
        self.names.append(name)
        self.categories.append(category)
        self.templates.append(templates)
        self.strokes.append(stroke)
        self.paths.append(path)

    def freeze(self) -> FontBank:
        return FontBank(
            tuple(self.names), tuple(self.templates), tuple(self.categories), tuple(self.strokes), tuple(self.paths)
        )


# matplotlib's bundled faces by category (the cm* faces are TeX's Computer Modern).
MATPLOTLIB_CATEGORIES: dict[str, str] = {"DejaVuSansMono": "monospace", "cmtt10": "monospace", "cmss10": "sans-serif"}
FONT_SPLITS: tuple[str, ...] = ("train", "heldout")


def _matplotlib_category(stem: str) -> str:
    for prefix, category in MATPLOTLIB_CATEGORIES.items():
        if stem.startswith(prefix):
            return category
    return "sans-serif" if stem.startswith("DejaVuSans") else "serif"


@functools.lru_cache(maxsize=4)
def load_font_bank(fonts_dir: str | None = None, split: str = "train") -> FontBank:
    """The glyph templates of the fonts training (or the held-out benchmark) draws from.

    ``"train"``: matplotlib's bundled fonts, the Hershey faces, the fonts of the pip
    packages in the ``train`` extra and the vendored fonts of the train split
    (:mod:`lettercnn.data.fontfiles`), then the fonts in ``fonts_dir``.
    ``"heldout"``: only the vendored held-out fonts, which no training run ever sees.
    Never a font the machine happens to have installed: a run must reproduce anywhere.

    Args:
        fonts_dir: a folder of the user's own fonts, or ``None`` (train split only).
        split: ``"train"`` or ``"heldout"``.

    Returns:
        The bank; fonts in a fixed order, duplicates dropped.

    Raises:
        ValueError: an unknown split; ``fonts_dir`` is not a folder or holds no usable
            font (the message names each file and why it was rejected).
    """
    from lettercnn.data import fontfiles

    if split not in FONT_SPLITS:
        raise ValueError(f"unknown font split {split!r}; expected one of {', '.join(FONT_SPLITS)}")
    bank = _BankBuilder()
    if split == "heldout":
        _add_font_files(bank, fontfiles.heldout_fonts())
        return bank.freeze()
    for path in bundled_font_files():
        try:
            _add_font(bank, path.stem, _matplotlib_category(path.stem), truetype_templates(path), path)
        except FontError as err:
            log.debug("bundled font skipped: %s", err)
    for face_name, face in HERSHEY_FACES.items():
        category = "script" if "script" in face_name else "handwriting"  # single-stroke pen faces
        for italic in (False, True):
            templates = hershey_templates(face | (cv2.FONT_ITALIC if italic else 0))
            _add_font(bank, face_name + ("-italic" if italic else ""), category, templates)
    _add_stroke_fonts(bank)
    _add_font_files(bank, fontfiles.training_fonts())
    if fonts_dir is not None:
        _add_user_fonts(bank, fonts_dir)
    return bank.freeze()


def _add_stroke_fonts(bank: _BankBuilder) -> None:
    """Add the Hershey vector faces (:mod:`lettercnn.data.strokes`), drawn anew per sample."""
    from lettercnn.data.strokes import STROKE_FACES, StrokeFontUnavailable, draw_letter, face_strokes

    for face, category in STROKE_FACES.items():
        try:
            letters = face_strokes(face)
        except StrokeFontUnavailable as err:
            log.warning("stroke fonts skipped: %s", err)
            return
        templates = _check_templates(f"stroke:{face}", [draw_letter(strokes) for strokes in letters])
        bank.add(f"stroke:{face}", category, templates, stroke=face)


def _add_font_files(bank: _BankBuilder, fonts: Sequence[Any]) -> None:
    """Add declared font files (:class:`lettercnn.data.fontfiles.FontFile`); a bad one is skipped."""
    for font in fonts:
        try:
            _add_font(bank, font.path.stem, font.category, truetype_templates(font.path), font.path)
        except FontError as err:
            log.warning("font skipped: %s", err)


def _add_user_fonts(bank: _BankBuilder, fonts_dir: str) -> None:
    """Add the usable fonts of ``fonts_dir``; raise when there is none."""
    files = user_font_files(fonts_dir)
    rejected: list[str] = []
    for path in files:  # never dropped as duplicates: a user's choice to weigh a font more
        try:
            templates = truetype_templates(path)
        except FontError as err:
            log.warning("font skipped: %s", err)
            rejected.append(str(err))
            continue
        bank.add(f"user:{path.stem}", "user", templates, path=path)
    if len(rejected) == len(files):
        why = "; ".join(rejected) if rejected else f"no {'/'.join(FONT_EXTENSIONS)} file in it"
        raise ValueError(f"no usable font in fonts_dir {fonts_dir} ({why}); every font must draw A-Z and a-z")


@dataclass(frozen=True)
class Rendered:
    """A chunk of rendered samples, in index order.

    Attributes:
        glyphs: canonical uint8 (n, 32, 32).
        labels: class indices (n,).
        chars: the letter drawn, upper or lower case (n,).
        fonts: index into :attr:`FontBank.names` (n,).
        raw: the images before :func:`~lettercnn.preprocess.canonical` (a list of
            uint8 gray arrays: CANVAS x CANVAS letters, scenes of their own size), or
            ``None`` unless asked for.
    """

    glyphs: np.ndarray
    labels: np.ndarray
    chars: np.ndarray
    fonts: np.ndarray
    raw: list[np.ndarray] | None


# Share of distorted samples drawn as a whole photo-like scene (a letter 25-85 % of a
# frame, with light, shadows, rules, boxes and neighbours; lettercnn.data.scenes) rather
# than a letter filling a CANVAS: recognition reads frames like these, and canonical
# turns both into the same kind of 32x32 glyph.
SCENE_P = 0.5
# A letter's scene in which preprocessing finds no glyph (a few per cent: too faint,
# too noisy) is drawn again, up to this many times: the runtime answers "?" for it
# without asking the model, so a letter label on an empty input teaches nothing.
LETTER_RETRIES = 2
# Neighbouring letters a scene may show beside its letter, drawn from the same font.
SCENE_NEIGHBOURS = 3


def render_chunk(
    indices: Sequence[int],
    *,
    seed: tuple[int, ...],
    fonts_dir: str | None = None,
    distort: bool = True,
    keep_raw: bool = False,
    font_split: str = "train",
    negatives: bool = False,
) -> Rendered:
    """Render samples by index (module-level so worker processes can run it).

    Args:
        indices: sample indices; sample ``i`` is letter ``LETTERS[i % 26]``, upper case
            when ``i // 26`` is even, lower case when odd.
        seed: the set's seed, e.g. ``(user_seed, stream)``; with ``i`` it seeds the
            sample's own generator ``np.random.default_rng((*seed, i))``.
        fonts_dir: extra fonts, see :func:`load_font_bank`.
        distort: handwriting and photo effects (half of them whole scenes, see
            :data:`SCENE_P`); ``False`` draws clean dark-on-light letters.
        keep_raw: also return the images before canonical.
        font_split: ``"train"``, or ``"heldout"`` for the benchmark's fonts.
        negatives: draw images of no letter instead (:mod:`lettercnn.data.negatives`),
            labelled :data:`~lettercnn.labels.NOT_A_LETTER`; their ``chars`` say the kind.

    Returns:
        The samples, see :class:`Rendered`.
    """
    bank = load_font_bank(fonts_dir, font_split)
    size = preprocess.DEFAULT_SPEC.size
    count = len(indices)
    glyphs = np.zeros((count, size, size), dtype=np.uint8)
    raws: list[np.ndarray] | None = [] if keep_raw else None
    labels, fonts = np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int32)
    chars = np.empty(count, dtype="<U1")
    for position, index in enumerate(indices):
        rng = np.random.default_rng((*seed, index))
        font = int(rng.integers(len(bank.names)))
        if negatives:
            raw, label, char = _negative(bank, font, rng), NOT_A_LETTER, "?"
            glyph = preprocess.canonical(raw)
        else:
            label = index % NUM_CLASSES
            upper = (index // NUM_CLASSES) % 2 == 0  # cases alternate: both, evenly, for every letter
            char = LETTERS[label] if upper else LETTERS[label].lower()
            for _ in range(1 + LETTER_RETRIES):  # a scene too faint or busy to find the letter in teaches nothing
                raw = _letter(bank, font, CHARS.index(char), rng, distort)
                glyph = preprocess.canonical(raw)
                if glyph.any():
                    break
        glyphs[position] = glyph
        labels[position], fonts[position], chars[position] = label, font, char
        if raws is not None:
            raws.append(raw)
    return Rendered(glyphs, labels, chars, fonts, raws)


def _letter(bank: FontBank, font: int, char_index: int, rng: np.random.Generator, distort: bool) -> np.ndarray:
    """One letter's raw image: a whole scene (SCENE_P of distorted samples) or a CANVAS letter."""
    from lettercnn.data.scenes import render_scene

    template = bank.template(font, char_index, rng if distort else None)
    if distort and rng.random() < SCENE_P:
        neighbours = [bank.template(font, int(k), rng) for k in rng.integers(0, len(CHARS), SCENE_NEIGHBOURS)]
        return render_scene(template, rng, neighbours)
    return render_image(template, rng, distort)


def _negative(bank: FontBank, font: int, rng: np.random.Generator) -> np.ndarray:
    """One image of no letter, drawn as letters are: a scene or a CANVAS glyph."""
    from lettercnn.data import negatives
    from lettercnn.data.scenes import render_scene

    kind = negatives.draw_kind(rng)
    path = bank.paths[font] if bank.paths else None
    template = negatives.negative_template(
        kind, rng, lambda: bank.template(font, int(rng.integers(len(CHARS))), rng), path
    )
    if template is None or rng.random() < SCENE_P:  # no neighbours: the model would see one of them
        return render_scene(None if template is None else negatives.hand_distort(template, rng), rng)
    return render_image(template, rng, True)


def render_image(template: np.ndarray, rng: np.random.Generator, distort: bool = True) -> np.ndarray:
    """One letter as a camera might see it: uint8 (CANVAS, CANVAS), either polarity.

    Args:
        template: a cropped uint8 glyph template, ink bright.
        rng: the sample's generator.
        distort: handwriting and photo effects; ``False``: plain black on white.

    Returns:
        The image, before :func:`lettercnn.preprocess.canonical`.
    """
    if not distort:
        side = sum(GLYPH_SIDE) / 2
        matrix = fit_affine(template, np.eye(2), side, CANVAS)
        coverage = cv2.warpAffine(template, matrix, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR, borderValue=0)
        return 255 - coverage
    coverage = _handwriting(template, rng).astype(np.float32) / 255.0
    return _photo(coverage, rng)


# Handwriting: the letter's shape. Ranges either way unless a pair is given.
ROTATION_DEG = 12.0
SHEAR = 0.35  # tan of the slant; cursive hands lean up to ~20 degrees
LOG_ASPECT = 0.3  # narrow to wide letters: +-35%
STROKE_P = 0.5
STROKE_PIXELS = (-2, -1, 1, 2, 3)  # thinner pens are rarer than markers at this size
ELASTIC_P = 0.6
ELASTIC_PX = (0.5, 2.0)
# Pixel and dot-matrix faces (old screens, LED signs, receipts): blocks across a glyph's height.
PIXEL_P = 0.04
PIXEL_ROWS = (6, 12)
# Photo: paper, ink and light. Levels are on a 0..1 scale.
DARK_BACKGROUND_P = 0.3  # chalk on a board, a screen, a negative
MIN_INK_CONTRAST = 0.4  # below this a real photo would be unreadable, and canonical too
LIGHT_GRADIENT = 0.2  # brightness change across the canvas, either way, per axis
MIN_LIT_SEPARATION = 0.3
BLUR_P = 0.5
BLUR_SIGMA = (0.3, 1.2)
NOISE_STD = 0.04
# Sensor noise grows no stronger than this share of the ink contrast.
NOISE_PER_CONTRAST = 0.12
JPEG_P = 0.2
JPEG_QUALITY = (25, 90)


def _handwriting(template: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Place a template on the canvas with a hand's irregularities: uint8 ink coverage."""
    image = template
    if rng.random() < PIXEL_P:
        image = pixelate(image, int(rng.integers(PIXEL_ROWS[0], PIXEL_ROWS[1] + 1)))
    if rng.random() < STROKE_P:
        image = change_stroke(image, int(rng.choice(STROKE_PIXELS)))
    draws = rng.uniform(-1.0, 1.0, size=5)
    linear = linear_map(draws[0] * ROTATION_DEG, draws[1] * SHEAR, draws[2] * LOG_ASPECT)
    shift = (draws[3] * SHIFT_PX, draws[4] * SHIFT_PX)
    matrix = fit_affine(image, linear, rng.uniform(*GLYPH_SIDE), CANVAS, shift)
    canvas = cv2.warpAffine(image, matrix, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR, borderValue=0)
    if rng.random() < ELASTIC_P:
        canvas = elastic_warp(canvas, rng, rng.uniform(*ELASTIC_PX))
    return canvas


@functools.lru_cache(maxsize=1)
def _ramps() -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical ramps from -0.5 to 0.5 across the canvas, float32."""
    ramp = (np.arange(CANVAS, dtype=np.float32) + 0.5) / CANVAS - 0.5
    return ramp[None, :], ramp[:, None]


def _photo(coverage: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage in [0, 1] -> a uint8 photo: paper, ink, light, focus, sensor, JPEG."""
    if rng.random() < DARK_BACKGROUND_P:
        paper = rng.uniform(0.0, 1.0 - MIN_INK_CONTRAST - 0.2)
        ink = rng.uniform(paper + MIN_INK_CONTRAST, 1.0)
    else:
        paper = rng.uniform(MIN_INK_CONTRAST + 0.2, 1.0)
        ink = rng.uniform(0.0, paper - MIN_INK_CONTRAST)
    image: np.ndarray = paper + (ink - paper) * coverage
    across, down = _ramps()
    tilt = rng.uniform(-LIGHT_GRADIENT, LIGHT_GRADIENT, size=2)
    # Light scales levels by 1 +- swing; keep the darker of paper and ink, at its
    # brightest, MIN_LIT_SEPARATION below the lighter at its darkest, so the letter
    # stays separable by one threshold as in a usable photo.
    dark, light = min(paper, ink), max(paper, ink)
    swing = float(np.abs(tilt).sum()) / 2
    allowed = max(0.0, (light - dark - MIN_LIT_SEPARATION) / (light + dark))
    if swing > allowed:
        tilt *= allowed / swing
    image *= 1.0 + tilt[0] * across + tilt[1] * down
    if rng.random() < BLUR_P:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(*BLUR_SIGMA))
    noise = rng.uniform(0.0, min(NOISE_STD, NOISE_PER_CONTRAST * (light - dark)))
    image += noise * noise_patch(rng, image.shape)
    photo = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if rng.random() < JPEG_P:
        quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
        _, encoded = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, quality])
        decoded = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
        photo = photo if decoded is None else decoded
    return photo


def text_coverage(text: str, shape: tuple[int, int], font: int, thickness: int, fill: float) -> np.ndarray:
    """Coverage of ``text`` drawn centred in an image of ``shape``: float32 (H, W) in [0, 1].

    The text is ``fill`` of the image's height (at most 85% of its width), in an OpenCV
    ``FONT_HERSHEY_*`` face; ``samples/make_samples.py`` draws its letters and word with it.
    """
    height, width = shape
    (text_w, text_h), baseline = cv2.getTextSize(text, font, 1.0, thickness)
    scale = min(fill * height / (text_h + baseline), 0.85 * width / text_w)
    (text_w, text_h), baseline = cv2.getTextSize(text, font, scale, thickness)
    origin = ((width - text_w) // 2, (height + text_h - baseline) // 2)
    canvas = np.zeros(shape, np.uint8)
    cv2.putText(canvas, text, origin, font, scale, 255, thickness, cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.0
