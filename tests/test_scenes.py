"""Photo-like training scenes, and what preprocessing makes of them."""

from __future__ import annotations

import numpy as np

from lettercnn.data.render import CHARS, load_font_bank
from lettercnn.data.scenes import DEFAULT_SCENE, render_scene
from lettercnn.preprocess import canonical


def template(char: str = "R") -> np.ndarray:
    return load_font_bank().templates[0][CHARS.index(char)]


def test_a_scene_is_a_square_uint8_frame_of_the_configured_size_and_repeats_for_a_seed():
    scene = render_scene(template(), np.random.default_rng(7))
    low, high = DEFAULT_SCENE.frame
    assert scene.dtype == np.uint8 and scene.ndim == 2 and scene.shape[0] == scene.shape[1]
    assert low <= scene.shape[0] <= high
    assert np.array_equal(scene, render_scene(template(), np.random.default_rng(7)))


def test_preprocessing_finds_the_letter_in_most_scenes():
    found = [canonical(render_scene(template("K"), np.random.default_rng(seed))).any() for seed in range(40)]
    assert np.mean(found) >= 0.9


def test_a_scene_without_a_template_holds_no_letter_and_differs_from_one_with_it():
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    blank, lettered = render_scene(None, rng_a), render_scene(template(), rng_b)
    assert blank.shape[0] >= DEFAULT_SCENE.frame[0]
    assert not np.array_equal(blank, lettered)
