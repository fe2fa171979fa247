"""The one preprocessing: any image -> white glyph on black, cropped, centred, 32x32."""

from __future__ import annotations

import sys
import warnings

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lettercnn import preprocess
from lettercnn.preprocess import DEFAULT_SPEC, ImageError, canonical, load_image, normalize, to_input


def draw(text: str = "E", size=(120, 100), ink=20, paper=235, scale=3.0, thickness=8, org=(15, 95)) -> np.ndarray:
    """Dark ink on light paper, uint8 gray."""
    image = np.full(size, paper, np.uint8)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, ink, thickness, cv2.LINE_AA)
    return image


def bbox(glyph: np.ndarray, level: int = 64):
    rows, cols = np.flatnonzero((glyph > level).any(1)), np.flatnonzero((glyph > level).any(0))
    return rows[0], rows[-1], cols[0], cols[-1]


def test_gives_uint8_32x32_white_glyph_on_black():
    glyph = canonical(draw())
    assert glyph.shape == (32, 32) and glyph.dtype == np.uint8
    assert glyph.max() == 255
    assert glyph[0].max() == 0 and glyph[:, 0].max() == 0  # background black at the border


def test_polarity_is_detected_so_both_inks_give_the_same_glyph():
    dark_on_light = canonical(draw(ink=20, paper=235))
    light_on_dark = canonical(draw(ink=235, paper=20))
    assert np.abs(dark_on_light.astype(int) - light_on_dark.astype(int)).mean() < 3


def test_glyph_is_centred_with_its_longer_side_filling_the_margin_box():
    top, bottom, left, right = bbox(canonical(draw("I", scale=4, org=(5, 110))))
    margin = DEFAULT_SPEC.margin
    assert top >= margin and bottom <= 31 - margin
    assert bottom - top + 1 >= 32 - 2 * margin - 2  # a tall letter spans the height
    assert abs((left + right) / 2 - 15.5) <= 1.5  # centred horizontally


def test_aspect_ratio_is_kept():
    bar = np.zeros((100, 100), np.uint8)
    bar[10:90, 45:55] = 255  # 80 tall, 10 wide
    top, bottom, left, right = bbox(canonical(bar), level=0)
    height, width = bottom - top + 1, right - left + 1
    assert height / width == pytest.approx(8, rel=0.35)


def test_position_and_size_in_the_picture_do_not_matter():
    small_corner = np.full((300, 300), 230, np.uint8)
    cv2.putText(small_corner, "K", (10, 60), cv2.FONT_HERSHEY_SIMPLEX, 2, 10, 5, cv2.LINE_AA)
    big_centre = np.full((300, 300), 230, np.uint8)
    cv2.putText(big_centre, "K", (60, 240), cv2.FONT_HERSHEY_SIMPLEX, 7, 10, 17, cv2.LINE_AA)
    a, b = canonical(small_corner).astype(int), canonical(big_centre).astype(int)
    assert np.abs(a - b).mean() < 20


def test_blank_and_flat_images_give_an_empty_input():
    for image in (np.zeros((40, 40), np.uint8), np.full((40, 40), 255, np.uint8), np.full((3, 3), 0.5)):
        assert canonical(image).max() == 0


def test_specks_far_from_the_glyph_are_ignored():
    clean = draw("T")
    specked = clean.copy()
    specked[5:7, 5:7] = 0
    specked[110:112, 90:92] = 0
    assert np.array_equal(canonical(clean), canonical(specked))


def test_the_dot_of_an_i_is_kept():
    glyph = canonical(draw("i", size=(140, 80), scale=4, org=(10, 120)))
    column = glyph[:, 12:20].max(axis=1) > 64
    runs = np.flatnonzero(np.diff(column.astype(int)) != 0)
    assert len(runs) >= 4  # stem and dot: two separate runs of ink down the column


def test_a_frame_edge_at_the_border_is_not_taken_for_the_glyph():
    photo = draw("L", size=(160, 160), scale=3.5, org=(40, 120))
    photo[:, :6] = 30  # the dark edge of a table beside the paper
    framed = canonical(photo)
    expected = canonical(draw("L", size=(160, 160), scale=3.5, org=(40, 120)))
    assert np.abs(framed.astype(int) - expected.astype(int)).mean() < 5


def test_adaptive_threshold_finds_the_glyph_under_uneven_light():
    height, width = 240, 320
    light = np.tile(np.linspace(90, 250, width, dtype=np.float32), (height, 1))
    ink = np.zeros((height, width), np.uint8)
    cv2.putText(ink, "H", (100, 190), cv2.FONT_HERSHEY_SIMPLEX, 5, 255, 14)
    photo = np.clip(light - 0.35 * ink, 0, 255).astype(np.uint8)
    reference = canonical(draw("H", size=(240, 320), ink=0, paper=255, scale=5, thickness=14, org=(100, 190)))
    adaptive = canonical(photo, threshold="adaptive")
    assert np.abs(adaptive.astype(int) - reference.astype(int)).mean() < 25


@pytest.mark.parametrize(
    "convert",
    [
        lambda g: g,
        lambda g: cv2.cvtColor(g, cv2.COLOR_GRAY2BGR),
        lambda g: g.astype(np.uint16) * 257,
        lambda g: g.astype(np.float32) / 255.0,
        lambda g: g > 128,
        lambda g: g[:, :, None],
    ],
    ids=["gray", "bgr", "uint16", "float01", "bool", "hw1"],
)
def test_formats_give_the_same_glyph(convert):
    base = draw("A")
    assert np.abs(canonical(convert(base)).astype(int) - canonical(base).astype(int)).mean() < 12


@pytest.mark.parametrize("ink_value", [0, 255])
def test_transparent_background_keeps_the_glyph_visible(ink_value):
    alpha = 255 - draw("W", ink=20, paper=235)  # opaque where the ink is
    bgra = np.zeros((*alpha.shape, 4), np.uint8)
    bgra[:, :, :3] = ink_value
    bgra[:, :, 3] = alpha
    expected = canonical(draw("W"))
    assert np.abs(canonical(bgra).astype(int) - expected.astype(int)).mean() < 12


def test_tiny_and_huge_images_work():
    assert canonical(np.full((1, 1), 255, np.uint8)).shape == (32, 32)
    huge = np.full((3000, 4000), 220, np.uint8)
    cv2.putText(huge, "M", (1200, 2200), cv2.FONT_HERSHEY_SIMPLEX, 40, 0, 120)
    assert canonical(huge).max() == 255


def test_normalize_maps_black_and_white_to_the_spec_range():
    glyph = np.array([[0, 255]], np.uint8)
    out = normalize(glyph)
    assert out.shape == (1, 1, 2) and out.dtype == np.float32
    assert out[0, 0, 0] == pytest.approx((0 - DEFAULT_SPEC.mean) / DEFAULT_SPEC.std)
    assert out[0, 0, 1] == pytest.approx((1 - DEFAULT_SPEC.mean) / DEFAULT_SPEC.std)


def test_to_input_reads_paths(tmp_path):
    path = tmp_path / "e.png"
    cv2.imwrite(str(path), draw())
    assert np.array_equal(to_input(path), normalize(canonical(draw())))


@pytest.mark.parametrize(
    "content, message",
    [(b"", "the file is empty"), (b"hello, not an image", "not an image"), (None, "cannot read")],
    ids=["empty", "text", "missing"],
)
def test_unreadable_files_raise_image_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert "bad.png" in str(info.value)


def test_truncated_png_is_an_image_error(tmp_path):
    ok, encoded = cv2.imencode(".png", draw())
    path = tmp_path / "cut.png"
    path.write_bytes(encoded.tobytes()[: len(encoded) // 2])
    with pytest.raises(ImageError):
        canonical(path)


def test_non_image_shapes_raise_image_error():
    for array in (np.zeros((4, 4, 2)), np.zeros((0, 5)), np.zeros(7), np.array([["a"]])):
        with pytest.raises(ImageError):
            canonical(array)


# Every dtype an image array may come in (files decode to uint8/uint16; arrays from
# other code to anything), and every shape: 0-sized, 1x1, thin lines, 1-D and 4-D,
# 1 to 5 channels.
FUZZ_DTYPES = [np.uint8, np.uint16, np.float32, np.float64, np.float16, np.bool_, np.int8, np.int32, np.int64]
IMAGES = hnp.arrays(
    dtype=st.sampled_from(FUZZ_DTYPES),
    shape=st.one_of(
        hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=40),
        st.tuples(st.integers(0, 64), st.integers(0, 64), st.integers(1, 5)),
        st.tuples(st.integers(1, 3), st.integers(100, 900)),  # a thin line, lying
        st.tuples(st.integers(100, 900), st.integers(1, 3), st.sampled_from([1, 3, 4])),  # standing, in colour
    ),
    elements={"allow_nan": True, "allow_infinity": True},  # NaN, inf, negative and huge floats
)
# What a refused array is told: the shapes or dtypes that are images.
CLEAR_REASONS = (
    "expected an image of shape (H, W), (H, W, 3) or (H, W, 4)",
    "image has no pixels",
    "unsupported image dtype",
)


@settings(max_examples=300, deadline=None)
@given(IMAGES)
def test_any_array_gives_a_finite_input_or_a_clear_error(image):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid-value warnings on the way either
        try:
            out = to_input(image)
        except ValueError as error:
            assert isinstance(error, ImageError) and any(reason in str(error) for reason in CLEAR_REASONS), error
            return
    assert out.shape == (1, 32, 32) and out.dtype == np.float32
    assert np.isfinite(out).all()


@settings(max_examples=100, deadline=None)
@given(IMAGES)
def test_any_array_splits_into_letter_glyphs_or_a_clear_error(image):
    try:
        crops = preprocess.split_word(image)
    except ImageError as error:
        assert any(reason in str(error) for reason in CLEAR_REASONS), error
        return
    height, width = image.shape[:2]
    for crop in crops:
        x, y, w, h = crop.box
        assert crop.glyph.shape == (32, 32) and crop.glyph.dtype == np.uint8
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height


def test_a_huge_image_is_shrunk_before_it_becomes_float():
    """A 10000x10000 scan: 100 MB as uint8, 400 MB more as float32, 1.2 GB more in colour."""
    import tracemalloc

    huge = np.full((10_000, 10_000), 230, np.uint8)
    cv2.putText(huge, "M", (3000, 7000), cv2.FONT_HERSHEY_SIMPLEX, 100, 0, 300)
    tracemalloc.start()
    try:
        glyph = canonical(huge)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.0f} MB"  # was 800 MB: the float copy and its clip
    assert np.array_equal(glyph, canonical(cv2.resize(huge, (512, 512), interpolation=cv2.INTER_AREA)))


def test_a_dark_table_edge_and_vignette_do_not_flip_the_page():
    # Side-lit paper with a dark table along the left, a dark corner and a glare spot:
    # the border's median is below the midpoint of the extremes, yet the paper is the
    # background.
    height, width = 240, 320
    light = np.tile(np.linspace(0.45, 0.62, width, dtype=np.float32), (height, 1))
    yy, xx = np.mgrid[0:height, 0:width]
    light -= 0.12 * (((xx - width) / width) ** 2 + ((yy - height) / height) ** 2)
    light[:, :70] = 0.05  # the table
    cv2.circle(light, (290, 30), 6, 1.0, -1)  # a glare spot lifts the maximum
    ink = np.zeros((height, width), np.uint8)
    cv2.putText(ink, "W", (110, 190), cv2.FONT_HERSHEY_SIMPLEX, 5, 255, 16)
    photo = np.clip((light - 0.3 * ink / 255.0) * 255, 0, 255).astype(np.uint8)
    reference = canonical(draw("W", size=(240, 320), ink=0, paper=255, scale=5, thickness=16, org=(110, 190)))
    assert np.abs(canonical(photo).astype(int) - reference.astype(int)).mean() < 20


def test_normalize_of_a_stack_is_the_stack_of_each_glyph_normalized():
    glyphs = np.random.default_rng(0).integers(0, 256, (5, 32, 32), dtype=np.uint8)
    batch = normalize(glyphs)
    assert batch.shape == (5, 1, 32, 32) and batch.dtype == np.float32
    assert np.array_equal(batch, np.stack([normalize(glyph) for glyph in glyphs]))


# A V4L2 index no machine has: opening it makes OpenCV warn on stderr (4.6 and 5.0 alike).
MISSING_CAMERA = 99


def test_quiet_opencv_silences_opencv_and_restores_its_log_level(capfd: pytest.CaptureFixture[str]) -> None:
    with preprocess.quiet_opencv():
        cv2.VideoCapture(MISSING_CAMERA).release()
    assert capfd.readouterr().err == ""
    cv2.VideoCapture(MISSING_CAMERA).release()
    assert "WARN" in capfd.readouterr().err  # the level is back: OpenCV warns again


def test_quiet_opencv_uses_the_older_set_log_level_where_cv2_utils_has_no_logging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    monkeypatch.delattr(cv2.utils, "logging", raising=False)
    monkeypatch.setitem(sys.modules, "cv2.utils.logging", None)  # as OpenCV 4.6 has it: no such module
    monkeypatch.setattr(cv2, "getLogLevel", lambda: 3, raising=False)  # 3: LOG_LEVEL_WARNING
    monkeypatch.setattr(cv2, "setLogLevel", calls.append, raising=False)
    with preprocess.quiet_opencv():
        assert calls == [0]  # LOG_LEVEL_SILENT
    assert calls == [0, 3]
