"""benchmarks/field.py: seeds pooled, the risk-coverage table per kind of non-letter,
and the rule a model's default threshold is chosen by."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import cv2
import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def field() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import field as module  # noqa: PLC0415 (benchmarks/ is no package)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


class FixedReader:
    """A stand-in for Recognizer: each glyph's first pixel picks the row of probabilities it gets."""

    labels = ["A", "B"]

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self.spec = SimpleNamespace(mean=0.0, std=1.0)

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        return self.rows[np.round(inputs[:, 0, 0, 0] * 255).astype(int)]


def glyphs(indices: list[int]) -> np.ndarray:
    out = np.zeros((len(indices), 32, 32), np.uint8)
    out[:, 0, 0] = indices
    return out


def test_pooled_material_is_each_seeds_images_one_after_another(field: ModuleType) -> None:
    one = field.Material({"photo": glyphs([1, 2])}, {"photo": np.array(["A", "b"])}, {"photo": np.array(["x", "y"])})
    two = field.Material({"photo": glyphs([3])}, {"photo": np.array(["B"])}, {"photo": np.array(["z"])})
    pooled = field.Material.pooled([one, two])
    assert pooled.glyphs["photo"][:, 0, 0].tolist() == [1, 2, 3]
    assert pooled.chars["photo"].tolist() == ["A", "b", "B"]
    assert pooled.categories["photo"].tolist() == ["x", "y", "z"]


def test_risk_coverage_counts_answered_right_read_and_each_kind_refused(field: ModuleType) -> None:
    rows = np.array([[0.0, 0.0], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])
    reader = FixedReader(rows)
    # Photo letters: A at 0.9 (right), A at 0.6 (right), B read as B at 0.7 (right), B read as A at 0.55 (wrong).
    material = field.Material({"photo": glyphs([1, 2, 3, 4])}, {"photo": np.array(["A", "a", "B", "b"])})
    nonletters = {"blank": glyphs([0, 0]), "scribble": glyphs([1, 4])}  # blank: no ink, never answered
    read, refused = field.readings(reader, material.glyphs), field.readings(reader, nonletters)
    curve = {row["threshold"]: row for row in field.risk_coverage(reader, material, read, refused)}
    at = curve[0.65]
    assert at["photo_answered"] == pytest.approx(0.5)  # 0.9 and 0.7
    assert at["photo_accuracy"] == pytest.approx(1.0)
    assert at["photo_read"] == pytest.approx(0.5)
    assert at["refused"] == {"blank": 1.0, "scribble": 0.5}
    assert at["nonletters_refused"] == pytest.approx(0.75)
    none = curve[0.0]
    assert none["photo_answered"] == 1.0 and none["photo_accuracy"] == pytest.approx(0.75)
    assert none["refused"] == {"blank": 1.0, "scribble": 0.0}


def test_the_i_l_bar_is_counted_apart_in_letters_answered_and_read(field: ModuleType) -> None:
    rows = np.zeros((5, 26))
    rows[1, [0, 1]] = 0.9, 0.1  # A
    rows[3, [0, 1]] = 0.3, 0.7  # B
    rows[4, [8, 11]] = 0.45, 0.55  # L or I
    reader = FixedReader(rows)
    reader.labels, reader.min_confidence = list(field.LETTERS), 0.65
    # A at 0.9 (right), b read as B at 0.7 (right), an I read as A at 0.9 (wrong), an l as L at 0.55 ('?').
    chars = np.array(["A", "b", "I", "l"])
    material = field.Material({"photo": glyphs([1, 3, 1, 4])}, {"photo": chars}, {"photo": np.array(["x"] * 4)})
    read = field.readings(reader, material.glyphs)
    photo = field.score(reader, material, read)["conditions"]["photo"]
    assert photo["answered"] == pytest.approx(0.75) and photo["read"] == pytest.approx(0.5)
    assert photo["answered_no_bar"] == pytest.approx(1.0) and photo["read_no_bar"] == pytest.approx(1.0)
    assert photo["no_bar"] == pytest.approx(1.0) and photo["bar"] == pytest.approx(0.5)
    at = {row["threshold"]: row for row in field.risk_coverage(reader, material, read, {})}[0.65]
    assert at["photo_read"] == pytest.approx(0.5) and at["photo_read_no_bar"] == pytest.approx(1.0)


def test_letters_and_non_letters_are_answered_as_the_runtime_answers_a_look_alike_pair(field: ModuleType) -> None:
    from lettercnn.calibration import look_alike_pairs

    rows = np.zeros((3, 26))
    rows[1, [8, 11]] = 0.45, 0.53  # a bar: I or L, sure together
    rows[2, [0, 1]] = 0.45, 0.53  # A or B: not look-alikes
    reader = FixedReader(rows)
    reader.labels, reader.min_confidence = list(field.LETTERS), 0.75
    reader.pairs = look_alike_pairs(reader.labels)
    chars = np.array(["l", "I", "B"])
    material = field.Material({"photo": glyphs([1, 1, 2])}, {"photo": chars}, {"photo": np.array(["x"] * 3)})
    read = field.readings(reader, material.glyphs)
    photo = field.score(reader, material, read)["conditions"]["photo"]
    assert photo["answered"] == pytest.approx(2 / 3) and photo["read"] == pytest.approx(1 / 3)  # the l as L
    scribbles = field.readings(reader, {"scribble": glyphs([1, 2])})
    assert field.score_nonletters(reader, scribbles, 0.75) == {"scribble": 0.5}  # the bar is a letter
    del reader.pairs  # a reader without look-alikes refuses all three
    assert field.score(reader, material, read)["conditions"]["photo"]["answered"] == 0.0


def test_rule_takes_the_highest_threshold_meeting_both_shares(field: ModuleType) -> None:
    curve = [
        {"threshold": 0.5, "photo_answered": 0.97, "photo_accuracy": 0.975},  # too few right
        {"threshold": 0.6, "photo_answered": 0.96, "photo_accuracy": 0.981},
        {"threshold": 0.65, "photo_answered": 0.95, "photo_accuracy": 0.985},
        {"threshold": 0.7, "photo_answered": 0.949, "photo_accuracy": 0.99},  # too few answered
    ]
    assert field.rule_threshold(curve) == 0.65  # no non-letters scored: the most the letters allow
    assert field.rule_threshold(curve, answered=0.99) is None


def test_rule_takes_the_lowest_threshold_refusing_enough_non_letters_of_each_kind(field: ModuleType) -> None:
    def row(threshold: float, answered: float, scribbles: float) -> dict[str, object]:
        refused = {"blank": 1.0, "sign-photo": 0.95, "scribble-photo": scribbles, "several-photo": 0.5}
        return {"threshold": threshold, "photo_answered": answered, "photo_accuracy": 0.985, "refused": refused}

    curve = [row(0.6, 0.97, 0.85), row(0.65, 0.965, 0.9), row(0.7, 0.96, 0.93), row(0.75, 0.949, 0.95)]
    assert field.rule_threshold(curve) == 0.65  # scribbles 90 %; "several" has no floor; 0.75 answers too few
    too_few = [row(0.6, 0.97, 0.85), row(0.65, 0.965, 0.88), row(0.7, 0.949, 0.93)]
    assert field.rule_threshold(too_few) == 0.65  # none refuses enough: the most the letters allow


def test_seeds_pool_in_one_run_and_name_the_rules_threshold(field: ModuleType) -> None:
    command = [
        sys.executable, str(BENCHMARKS / "field.py"), "--seeds", "1,2", "--per-letter", "1",
        "--conditions", "photo", "--nonletters", "2", "--threads", "1", "--json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    summary = json.loads(done.stdout)
    assert summary["seeds"] == [1, 2] and summary["images_per_condition"] == 52
    result = summary["results"]["baseline"]
    curve = result["risk_coverage"]
    assert len(curve[0]["refused"]) == 7 and all(0 <= v <= 1 for v in curve[0]["refused"].values())
    assert result["rule_threshold"] == field.rule_threshold(curve)
    assert field.THRESHOLDS[1:3] == (0.3, 0.35)


class ShrinkingReader:
    """A stand-in for Recognizer whose glyph is the image shrunk to 32x32 (grey)."""

    def glyph(self, image: np.ndarray) -> np.ndarray:
        grey = image if image.ndim == 2 else image[..., 0]
        return cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA)


def test_a_condition_alone_draws_the_images_it_draws_among_all(field: ModuleType) -> None:
    alone = field.make_material(["photo"], 1, 7, ShrinkingReader())
    among = field.make_material(["clean", "inverted", "photo"], 1, 7, ShrinkingReader())
    np.testing.assert_array_equal(alone.glyphs["photo"], among.glyphs["photo"])
    assert alone.categories["photo"].tolist() == among.categories["photo"].tolist()


def test_unknown_conditions_are_one_error_line(field: ModuleType) -> None:
    command = [sys.executable, str(BENCHMARKS / "field.py"), "--conditions", "photo,fog"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--conditions takes some of clean" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_seeds_are_one_error_line(field: ModuleType) -> None:
    command = [sys.executable, str(BENCHMARKS / "field.py"), "--seeds", "1,x"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--seeds takes whole numbers" in done.stderr and "Traceback" not in done.stderr
