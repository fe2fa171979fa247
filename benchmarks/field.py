"""Field benchmark: letters from fonts no training run has seen, as glyphs and as photos.

    python benchmarks/field.py                                  # the shipped model
    python benchmarks/field.py --model runs/x/model.onnx         # shipped vs candidate, side by side
    python benchmarks/field.py --model a.onnx --baseline b.onnx --per-letter 20 --json
    python benchmarks/field.py --seeds 1,2,3 --per-letter 20 --conditions clean,inverted,photo  # tuning seeds

The letters come from the vendored fonts of the held-out split
(``lettercnn/data/fonts/manifest.json``, ``"split": "heldout"``): a fixed quarter of
each category's families, chosen by hash of the family name, which the training font
bank never loads. They are drawn by this benchmark's own camera simulation
(``fieldsim.py``, written apart from the training scenes), with their own seed:

- ``clean`` and ``inverted``: 32x32 glyphs, dark on white and white on black;
- ``photo``: 128x128 frames like a phone photo (light falling off by 25-70 %, soft
  cast shadows, perspective, defocus, noise, JPEG 35-85) -- the headline figure;
- one condition per difficulty: ``gradient``, ``shadow``, ``box``, ``ruled``,
  ``board`` (light ink on a dark board), ``blur``, ``jpeg``, ``noise`` (strong sensor
  noise, hot and dead pixels).

Each image goes through exactly what ``letters recognize`` does with its defaults
(:meth:`lettercnn.runtime.Recognizer.glyph`, then the model). A capital I and a
lower-case l are the same bar in many faces, so the I<->L pair is counted apart:
``accuracy`` is over every image, ``no I/l`` leaves out the images of I and l, and
the ``I<->L`` row says how many of those were read as the right one of the two.
The risk-coverage table gives, per threshold, the letters answered and right among
the answered, the share read right (answered and right: what ``letters recognize``
gets with that threshold), and each kind of non-letter answered "?". "Answered" is
what ``letters recognize`` answers: the top probability reaches the threshold, or the
top two are a look-alike pair (I and L) that reach it together. A model's default
threshold is chosen from it by one rule (:func:`rule_threshold`): of the thresholds in
0.05 steps that answer at least 95 % of the photo letters with at least 98 % of them
right, the lowest that answers "?" for at least 99 % of the blank frames and 90 % of
each kind of sign and scribble (the most letters read that the non-letters allow; where
none refuses that many, the highest), read on the tuning seeds pooled (``--seeds
1,2,3``), never on the report seed (the default ``--seed``).

Needs the training extra (matplotlib's FreeType draws the fonts).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fieldsim  # noqa: E402

from lettercnn.calibration import answer_level  # noqa: E402
from lettercnn.data.render import CHARS, load_font_bank  # noqa: E402
from lettercnn.labels import LETTERS  # noqa: E402
from lettercnn.preprocess import normalize  # noqa: E402
from lettercnn.runtime import DEFAULT_MODEL, Recognizer  # noqa: E402

# The bar pair: images of these characters are scored apart.
BAR_CHARS = ("I", "l")
SEED = 20261130
# Bins of the expected calibration error (Guo et al. 2017 use 15).
ECE_BINS = 15
# Thresholds the risk-coverage table lists: none, then 0.30 to 0.95 in 0.05 steps.
THRESHOLDS = (0.0, *(round(0.3 + 0.05 * k, 2) for k in range(14)))
# The rule a model's default threshold is chosen by (see the module docstring): photo
# letters answered at least this share, and right among the answered at least this share.
RULE_ANSWERED = 0.95
RULE_RIGHT = 0.98
# ... and each of these kinds of non-letter answered "?" at least this share (the
# targets of "know when there is no letter").
RULE_REFUSED = {"blank": 0.99, "sign-photo": 0.9, "sign-glyph": 0.9, "scribble-photo": 0.9, "scribble-glyph": 0.9}


@dataclass
class Material:
    """The benchmark's images, already reduced to the glyphs the model reads.

    Attributes:
        glyphs: condition -> canonical uint8 glyphs (n, 32, 32).
        chars: condition -> the character drawn per image.
        categories: condition -> the font category per image.
    """

    glyphs: dict[str, np.ndarray] = field(default_factory=dict)
    chars: dict[str, np.ndarray] = field(default_factory=dict)
    categories: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def pooled(cls, materials: Sequence[Material]) -> Material:
        """The materials of several seeds as one: each condition's images one after another."""
        return cls(
            **{name: pooled([getattr(m, name) for m in materials]) for name in ("glyphs", "chars", "categories")}
        )


def pooled(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Dicts of arrays with the same keys (one per seed) as one: each key's arrays one after another."""
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def make_material(conditions: Sequence[str], per_letter: int, seed: int, reader: Recognizer) -> Material:
    """Render every condition from the held-out fonts and preprocess it like ``letters recognize``."""
    bank = load_font_bank(split="heldout")
    if not bank.names:
        raise SystemExit("no held-out fonts: lettercnn/data/fonts/manifest.json lists none")
    material = Material()
    count = per_letter * len(LETTERS)
    for condition in conditions:
        # Random numbers by the condition's place among all of them: one condition alone
        # draws the images it draws in a full run.
        number = fieldsim.CONDITIONS.index(condition)
        glyphs = np.zeros((count, 32, 32), np.uint8)
        chars, categories = np.empty(count, "<U1"), np.empty(count, "<U16")
        for index in range(count):
            rng = np.random.default_rng((seed, number, index))
            upper = (index // len(LETTERS)) % 2 == 0
            char = LETTERS[index % len(LETTERS)] if upper else LETTERS[index % len(LETTERS)].lower()
            font = int(rng.integers(len(bank.names)))
            image = fieldsim.render(bank.templates[font][CHARS.index(char)], rng, condition)
            glyphs[index], chars[index], categories[index] = reader.glyph(image), char, bank.categories[font]
        material.glyphs[condition], material.chars[condition] = glyphs, chars
        material.categories[condition] = categories
    return material


def make_nonletters(per_kind: int, seed: int, reader: Recognizer) -> dict[str, np.ndarray]:
    """Glyphs of images that hold no letter: blank frames, signs and scribbles (photo and 32x32)."""
    bank = load_font_bank(split="heldout")
    paths = [p for p in bank.paths if p is not None]
    out: dict[str, np.ndarray] = {}
    for number, condition in enumerate(fieldsim.NONLETTER_CONDITIONS):
        glyphs = np.zeros((per_kind, 32, 32), np.uint8)
        for index in range(per_kind):
            rng = np.random.default_rng((seed, 100 + number, index))
            template = None
            if condition.startswith("sign"):
                while template is None:
                    path = str(paths[int(rng.integers(len(paths)))])
                    template = fieldsim.sign_template(path, fieldsim.SIGNS[int(rng.integers(len(fieldsim.SIGNS)))])
            elif condition.startswith("scribble"):
                template = fieldsim.pen_scribble(rng)
            elif condition.startswith("several"):
                font = int(rng.integers(len(bank.names)))
                picks = rng.integers(0, len(CHARS), int(rng.integers(2, 4)))
                template = fieldsim.several_letters([bank.templates[font][k] for k in picks], rng)
            elif condition.startswith("cut-off"):
                template = bank.templates[int(rng.integers(len(bank.names)))][int(rng.integers(len(CHARS)))]
            glyphs[index] = reader.glyph(fieldsim.nonletter(template, rng, condition))
        out[condition] = glyphs
    return out


def probabilities(reader: Recognizer, glyphs: np.ndarray) -> np.ndarray:
    """The model's probabilities per glyph; a blank glyph (no ink found) gets all zeros,
    as ``letters recognize`` answers it "?" without running the model."""
    out = np.zeros((len(glyphs), len(reader.labels)), np.float32)
    inked = glyphs.reshape(len(glyphs), -1).any(axis=1)
    if inked.any():
        out[inked] = reader.probabilities(normalize(glyphs[inked], reader.spec))
    return out


def readings(reader: Recognizer, glyphs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """:func:`probabilities` of each condition's glyphs, computed once for every table."""
    return {condition: probabilities(reader, images) for condition, images in glyphs.items()}


def expected_calibration_error(confidence: np.ndarray, right: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the mean |accuracy - confidence| over equal-width confidence bins, weighted by count."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mine = index == b
        if mine.any():
            total += mine.sum() * abs(float(right[mine].mean()) - float(confidence[mine].mean()))
    return total / max(len(confidence), 1)


def graded(reader: Recognizer, chars: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model's answers, their confidence, and which are right (an image with no
    glyph, all-zero probabilities, never is) for letters ``chars`` read as ``probs``."""
    answers = np.array([reader.labels[k] for k in probs.argmax(axis=1)])
    confidence = probs.max(axis=1)
    return answers, confidence, (answers == np.char.upper(chars)) & (confidence > 0)


def _mean(values: np.ndarray) -> float:
    """The mean, or NaN for no values (a material without I and l, or only them)."""
    return float(values.mean()) if values.size else float("nan")


def answer_levels(reader: Recognizer, probs: np.ndarray) -> np.ndarray:
    """Per reading, the highest threshold at which ``letters recognize`` still answers it
    with a letter (:func:`lettercnn.calibration.answer_level`: the top probability, or a
    look-alike pair such as I and L together); the same at every threshold."""
    return answer_level(probs, getattr(reader, "pairs", ()))


def answers_at(levels: np.ndarray, threshold: float) -> np.ndarray:
    """Which readings (their :func:`answer_levels`) are answered with a letter at
    ``threshold``, not "?"; an image with no glyph never is."""
    return levels >= max(threshold, 1e-9)


def selective(given: np.ndarray, right: np.ndarray) -> tuple[float, float]:
    """Share answered with a letter (``given``: :func:`answers_at`) and accuracy on those."""
    coverage = float(given.mean()) if len(given) else 0.0
    return coverage, float(right[given].mean()) if given.any() else float("nan")


def score_nonletters(reader: Recognizer, nonletters: dict[str, np.ndarray], threshold: float) -> dict[str, float]:
    """Share of each non-letter condition answered "?" at ``threshold`` (``nonletters``:
    their :func:`readings`)."""
    return _refused({condition: answer_levels(reader, probs) for condition, probs in nonletters.items()}, threshold)


def _refused(levels: dict[str, np.ndarray], threshold: float) -> dict[str, float]:
    """Share of each condition's readings (their :func:`answer_levels`) answered "?" at ``threshold``."""
    return {condition: float((~answers_at(values, threshold)).mean()) for condition, values in levels.items()}


def score(reader: Recognizer, material: Material, read: dict[str, np.ndarray]) -> dict[str, object]:
    """Accuracy of one model on the material (``read``: its :func:`readings`): per
    condition, per letter, per font category."""
    per_condition: dict[str, dict[str, float]] = {}
    letters_right = np.zeros(len(LETTERS))
    letters_total = np.zeros(len(LETTERS))
    by_category: dict[str, list[int]] = {}
    confusions: dict[str, int] = {}
    threshold = float(getattr(reader, "min_confidence", 0.0))
    for condition, probs in read.items():
        chars = material.chars[condition]
        answers, confidence, right = graded(reader, chars, probs)
        truth = np.char.upper(chars)
        bar = np.isin(chars, BAR_CHARS)
        given = answers_at(answer_levels(reader, probs), threshold)
        share_answered, accuracy_answered = selective(given, right)
        read_right = given & right
        per_condition[condition] = {
            "accuracy": float(right.mean()),
            "no_bar": _mean(right[~bar]),
            "bar": _mean(right[bar]),
            "answered": share_answered,
            "accuracy_answered": accuracy_answered,
            "read": float(read_right.mean()),
            "answered_no_bar": selective(given[~bar], right[~bar])[0],
            "read_no_bar": _mean(read_right[~bar]),
            "ece": expected_calibration_error(confidence, right),
            "nll": float(
                -np.log(np.clip(probs[np.arange(len(truth)), [LETTERS.index(t) for t in truth]], 1e-12, 1)).mean()
            ),
        }
        for k, letter in enumerate(LETTERS):
            mine = truth == letter
            letters_right[k] += right[mine].sum()
            letters_total[k] += mine.sum()
        for category in np.unique(material.categories[condition]):
            mine = material.categories[condition] == category
            tally = by_category.setdefault(str(category), [0, 0])
            tally[0] += int(right[mine].sum())
            tally[1] += int(mine.sum())
        for char, answer in zip(chars[~right], answers[~right], strict=True):
            key = f"{char}->{answer}"
            confusions[key] = confusions.get(key, 0) + 1
    worst = sorted(confusions.items(), key=lambda item: -item[1])[:15]
    return {
        "min_confidence": threshold,
        "conditions": per_condition,
        "letters": {letter: float(letters_right[k] / max(letters_total[k], 1)) for k, letter in enumerate(LETTERS)},
        "categories": {name: right / total for name, (right, total) in sorted(by_category.items())},
        "confusions": dict(worst),
    }


def risk_coverage(
    reader: Recognizer, material: Material, read: dict[str, np.ndarray], nonletters: dict[str, np.ndarray]
) -> list[dict[str, object]]:
    """Per threshold: letters answered, right among the answered and read right (photo,
    clean, inverted; read right also without the images of I and l, ``*_read_no_bar``),
    and each kind of non-letter refused (``refused``; their mean:
    ``nonletters_refused``). ``read`` and ``nonletters``: the model's :func:`readings` of
    the material and of the images of no letter."""
    rows: list[dict[str, object]] = []
    letters = {}  # condition -> answer levels, right, not a bar: the same at every threshold
    for condition, probs in read.items():
        if condition in ("photo", "clean", "inverted"):
            chars = material.chars[condition]
            letters[condition] = (
                answer_levels(reader, probs),
                graded(reader, chars, probs)[2],
                ~np.isin(chars, BAR_CHARS),
            )
    refusing = {kind: answer_levels(reader, probs) for kind, probs in nonletters.items()}
    for threshold in THRESHOLDS:
        row: dict[str, object] = {"threshold": threshold}
        for condition, (levels, right, plain) in letters.items():
            given = answers_at(levels, threshold)
            row[f"{condition}_answered"], row[f"{condition}_accuracy"] = selective(given, right)
            read_right = given & right
            row[f"{condition}_read"] = float(read_right.mean())
            row[f"{condition}_read_no_bar"] = _mean(read_right[plain])
        if refusing:
            refused = _refused(refusing, threshold)
            row["refused"] = refused
            row["nonletters_refused"] = float(np.mean(list(refused.values())))
        rows.append(row)
    return rows


def rule_threshold(
    curve: Sequence[dict[str, object]],
    answered: float = RULE_ANSWERED,
    right: float = RULE_RIGHT,
    refused: dict[str, float] = RULE_REFUSED,
) -> float | None:
    """The threshold :func:`risk_coverage`'s ``curve`` gives by the rule: of those that
    answer at least ``answered`` of the photo letters with at least ``right`` of those
    right, the lowest at which each kind of non-letter in ``refused`` (the curve's
    ``refused``; kinds it lacks are not asked) is answered "?" at least its share, so as
    many letters are read as the non-letters allow; where none refuses that many, the
    highest of them. ``None``: no threshold keeps the letters' shares."""
    keeps = [
        row
        for row in curve
        if float(row.get("photo_answered", 0.0)) >= answered  # type: ignore[arg-type]
        and float(row.get("photo_accuracy", 0.0)) >= right  # type: ignore[arg-type]
    ]
    refuses = [row for row in keeps if _refuses(row, refused)]
    if refuses:
        return min(float(row["threshold"]) for row in refuses)  # type: ignore[arg-type]
    return max((float(row["threshold"]) for row in keeps), default=None)  # type: ignore[arg-type]


def _refuses(row: dict[str, object], shares: dict[str, float]) -> bool:
    """Whether a row of the curve refuses each kind of non-letter in ``shares`` at least its share."""
    refused = row.get("refused")
    return isinstance(refused, dict) and all(refused.get(kind, 1.0) >= share for kind, share in shares.items())


def print_tables(results: dict[str, dict[str, object]], conditions: Sequence[str]) -> None:
    """Rich tables: conditions (accuracy, without I/l, I<->L), categories, worst letters."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    names = list(results)
    table = Table(title="Field benchmark: held-out fonts (accuracy %; without I/l; I<->L)")
    table.add_column("condition")
    for name in names:
        table.add_column(name, justify="right")
    for condition in conditions:
        cells = []
        for name in names:
            row = results[name]["conditions"][condition]  # type: ignore[index]
            cells.append(f"{100 * row['accuracy']:.1f}  ({100 * row['no_bar']:.1f}; {100 * row['bar']:.0f})")
        table.add_row(condition, *cells)
    console.print(table)
    categories = Table(title="By font category (all conditions, accuracy %)")
    categories.add_column("category")
    for name in names:
        categories.add_column(name, justify="right")
    for category in results[names[0]]["categories"]:  # type: ignore[union-attr]
        categories.add_row(category, *(f"{100 * results[n]['categories'][category]:.1f}" for n in names))  # type: ignore[index]
    console.print(categories)
    calibration = Table(
        title="Answered, right among answered, read right (without I and l), ECE (15 bins), NLL "
        "at each model's own threshold"
    )
    calibration.add_column("condition")
    for name in names:
        calibration.add_column(f"{name} (≥{results[name]['min_confidence']:.2f})", justify="right")
    for condition in ("clean", "inverted", "photo"):
        if condition in conditions:
            calibration.add_row(condition, *(_calibration_cell(results[n]["conditions"][condition]) for n in names))  # type: ignore[index]
    for condition in results[names[0]].get("nonletters", {}):  # type: ignore[union-attr]
        calibration.add_row(f"{condition}: '?'", *(f"{100 * results[n]['nonletters'][condition]:.1f} %" for n in names))  # type: ignore[index]
    console.print(calibration)
    for name in names:
        curve = results[name].get("risk_coverage")
        if not curve:
            continue
        rule = results[name].get("rule_threshold")
        table = Table(
            title=f"{name}: risk-coverage (letters answered / right when answered / read right; "
            f"each kind of non-letter answered '?'); the rule's threshold: "
            + ("none meets it" if rule is None else f"{rule:.2f}")
        )
        kinds = list(curve[0].get("refused", {}))  # type: ignore[index, union-attr]
        for column in ("threshold", "photo", "clean", *kinds):
            table.add_column(column, justify="right")
        nan = float("nan")
        for row in curve:  # type: ignore[union-attr]
            table.add_row(
                f"{row['threshold']:.2f}",
                *(
                    f"{100 * row.get(f'{c}_answered', nan):.1f} / {100 * row.get(f'{c}_accuracy', nan):.1f}"
                    f" / {100 * row.get(f'{c}_read', nan):.1f}"
                    for c in ("photo", "clean")
                ),
                *(f"{100 * row['refused'][kind]:.1f}" for kind in kinds),
            )
        console.print(table)
    for name in names:
        letters = results[name]["letters"]  # type: ignore[assignment]
        worst = sorted(letters.items(), key=lambda item: item[1])[:8]  # type: ignore[union-attr]
        console.print(f"[bold]{name}[/]: worst letters " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in worst))
        console.print(
            "  most frequent errors: " + ", ".join(f"{k} ×{v}" for k, v in results[name]["confusions"].items())
        )  # type: ignore[union-attr]


def _calibration_cell(row: dict[str, float]) -> str:
    return (
        f"{100 * row['answered']:.1f} / {100 * row['accuracy_answered']:.1f}; "
        f"read {100 * row['read']:.1f} ({100 * row['read_no_bar']:.1f}); ECE {100 * row['ece']:.1f}; NLL {row['nll']:.2f}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a candidate .onnx (scored beside the baseline)")
    parser.add_argument("--baseline", type=Path, default=DEFAULT_MODEL, help="default: the shipped model")
    parser.add_argument("--per-letter", type=int, default=40, help="images per letter per condition")
    parser.add_argument("--seed", type=int, default=SEED, help="the report seed (default); see --seeds")
    parser.add_argument(
        "--seeds", help="several seeds pooled, comma-separated (the tuning seeds 1,2,3 a threshold is chosen on)"
    )
    parser.add_argument("--conditions", default=",".join(fieldsim.CONDITIONS))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--nonletters", type=int, default=200, help="images per non-letter kind (0: none)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in conditions if c not in fieldsim.CONDITIONS]
    if unknown or not conditions:
        parser.error(f"--conditions takes some of {', '.join(fieldsim.CONDITIONS)}, not {args.conditions!r}")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()] if args.seeds else [args.seed]
    except ValueError:
        parser.error(f"--seeds takes whole numbers separated by commas, not {args.seeds!r}")
    if not seeds:
        parser.error("--seeds names no seed")
    models = {"baseline": args.baseline} | ({"candidate": args.model} if args.model else {})
    readers = {name: Recognizer(path, threads=args.threads) for name, path in models.items()}
    start = time.perf_counter()
    first = next(iter(readers.values()))
    material = Material.pooled([make_material(conditions, args.per_letter, seed, first) for seed in seeds])
    nonletters = pooled([make_nonletters(args.nonletters, seed, first) for seed in seeds]) if args.nonletters else {}
    rendered = time.perf_counter() - start
    results = {}
    for name, reader in readers.items():
        read, refused = readings(reader, material.glyphs), readings(reader, nonletters)
        results[name] = score(reader, material, read)
        results[name]["nonletters"] = score_nonletters(reader, refused, float(getattr(reader, "min_confidence", 0.0)))
        results[name]["risk_coverage"] = curve = risk_coverage(reader, material, read, refused)
        results[name]["rule_threshold"] = rule_threshold(curve)
    summary = {
        "models": {name: str(path) for name, path in models.items()},
        "fonts": list(load_font_bank(split="heldout").names),
        "per_letter": args.per_letter,
        "seeds": seeds,
        "images_per_condition": args.per_letter * len(LETTERS) * len(seeds),
        "seconds_rendering": round(rendered, 1),
        "results": results,
    }
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(
            f"{len(summary['fonts'])} held-out fonts, {summary['images_per_condition']} images per condition, "
            f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} "
            f"(rendered and preprocessed in {rendered:.0f} s)"
        )
        print_tables(results, conditions)


if __name__ == "__main__":
    main()
