"""Build the report of a trained run: figures, numbers, report.json, report.md, report.html."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lettercnn import __version__
from lettercnn.data.imagetree import LabelledGlyphs
from lettercnn.fileio import write_json, write_text
from lettercnn.labels import LETTERS, NUM_CLASSES
from lettercnn.report import (
    DEFAULT_TSNE_SAMPLES,
    REPORT_DIR,
    confidence,
    entropy,
    figures,
    page,
    tsne,
)
from lettercnn.report.confidence import Confidence, CoveragePoint
from lettercnn.report.entropy import REFERENCE, REFERENCE_NAME, REFERENCE_SOURCE
from lettercnn.report.features import BLOCK_NAMES, Features, ReportProgress
from lettercnn.runs import HISTORY_FILE, read_history, read_metrics

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from lettercnn.nn.model import LetterCNN

STEP_TSNE = "t-SNE"
STEP_VALIDATION = "reading validation letters"
STEP_NON_LETTERS = "rendering non-letters"

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
# Figure key -> PNG file name, in the order the page shows them.
FIGURE_FILES: dict[str, str] = {
    "kernels_conv0": "kernels_conv0.png",
    "kernels_conv1": "kernels_conv1.png",
    "conv1_patterns": "conv1_patterns.png",
    "feature_maps_conv0": "feature_maps_conv0.png",
    "feature_maps_conv1": "feature_maps_conv1.png",
    "tsne_hidden": "tsne_hidden.png",
    "tsne_logits": "tsne_logits.png",
    "entropy": "entropy.png",
    "loss": "loss.png",
    "confusion": "confusion.png",
    "reliability": "reliability.png",
    "risk_coverage": "risk_coverage.png",
}


@dataclass(frozen=True)
class ImageEntropy:
    """One test image's entropies, in nats (see :mod:`lettercnn.report.entropy`).

    Attributes:
        index: the test image's index (see :func:`pick_index`).
        true_letter: its label.
        letter: the recognised letter (top-1).
        confidence: the softmax probability of ``letter``.
        input: entropy of the input's 256-bin pixel histogram.
        blocks: entropy of each conv block's activation histogram (256 bins over its range).
        prediction: entropy of the predicted distribution over the 26 letters.
    """

    index: int
    true_letter: str
    letter: str
    confidence: float
    input: float
    blocks: list[float]
    prediction: float


@dataclass(frozen=True)
class TestSetEntropy:
    """The test set's entropies, in nats.

    Attributes:
        input: mean over the test images of the input entropy.
        blocks: mean of each block's entropy.
        prediction: mean entropy of the predicted distribution.
        random_guess: a uniform guess over the 26 letters, ln 26.
        labels: entropy of the distribution of the test labels.
        cross_entropy: the model's mean -ln p(true letter).
        input_zeros: mean share of input pixels that are exactly 0 (black).
        block_zeros: mean share of each block's activations that are exactly 0.
    """

    input: float
    blocks: list[float]
    prediction: float
    random_guess: float
    labels: float
    cross_entropy: float
    input_zeros: float
    block_zeros: list[float]


@dataclass(frozen=True)
class Report:
    """A finished report: what was measured and where the files are.

    Attributes:
        out_dir: the folder holding the figures, report.json, report.md and report.html.
        checkpoint: the checkpoint file reported on.
        run: the run's name (its folder's name).
        data_source: which test images were used.
        test_images: how many.
        accuracy: top-1 accuracy on them, 0..1.
        run_accuracy: the test accuracy in the run's metrics.json; None without one.
        feature_image: the image of the feature maps (its entropies too).
        entropy_image: the image of the per-image entropy table.
        test_set: the test-set entropies.
        tsne_samples: points in each t-SNE map.
        tsne_requested: points asked for.
        tsne_perplexity: the perplexity used.
        block_shapes: ``[channels, height, width]`` of each conv block's output.
        conv1_strongest_kernel: over conv layer 1's output channels, the mean share of a
            channel's squared weight in its strongest 5x5 kernel (see
            :func:`~lettercnn.report.features.strongest_kernel_share`).
        confidence: calibration of the test letters before and after temperature scaling,
            the "?" threshold and the risk-coverage table (:mod:`lettercnn.report.confidence`).
        figures: figure key -> PNG file name in ``out_dir`` (see :data:`FIGURE_FILES`);
            ``loss`` is missing when the run has no history.json.
        seconds: wall time of the whole report.
    """

    out_dir: Path
    checkpoint: Path
    run: str
    data_source: str
    test_images: int
    accuracy: float
    run_accuracy: float | None
    feature_image: ImageEntropy
    entropy_image: ImageEntropy
    test_set: TestSetEntropy
    tsne_samples: int
    tsne_requested: int
    tsne_perplexity: float
    block_shapes: list[list[int]]
    conv1_strongest_kernel: float
    confidence: Confidence
    figures: dict[str, str]
    seconds: float

    @property
    def html(self) -> Path:
        """The self-contained report page."""
        return self.out_dir / REPORT_HTML

    def to_dict(self) -> dict[str, Any]:
        """Every number of the report, JSON-ready (what report.json holds)."""
        values = dataclasses.asdict(self)
        values.update(out_dir=str(self.out_dir), checkpoint=str(self.checkpoint))
        reference = {**REFERENCE, "source": REFERENCE_SOURCE}
        return {"units": "nats", "lettercnn_version": __version__, **values, "reference": reference}


def _ignore(_step: str, _done: int, _total: int) -> None:
    """The default progress callback: do nothing."""


def default_out_dir(checkpoint: str | os.PathLike[str]) -> Path:
    """``RUN/report/``: the run folder, or the folder of a ``.pt`` file, plus ``report``."""
    path = Path(checkpoint)
    return (path if path.is_dir() else path.parent) / REPORT_DIR


def _check_options(image_index: int | None, entropy_index: int | None, tsne_samples: int) -> None:
    """Raise ValueError naming the first bad option."""
    for name, value in (("image_index", image_index), ("entropy_index", entropy_index)):
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if tsne_samples < tsne.MIN_POINTS:
        raise ValueError(f"tsne_samples must be >= {tsne.MIN_POINTS}, got {tsne_samples}")


def pick_index(requested: int | None, count: int, name: str = "image_index") -> int:
    """The test image to show: ``requested``, or the middle one of ``count`` when None.

    The middle (``count // 2``) is in range for any test set, and a split is stored letter
    after letter (A, B, ..., Z, A, ...), so it is no particular letter.

    Args:
        requested: an index into the test set, or None.
        count: test images, at least 1.
        name: the option's name, for the error.

    Returns:
        An index in ``0 .. count - 1``.

    Raises:
        ValueError: ``requested`` is past the last test image.
    """
    if requested is None:
        return count // 2
    if requested >= count:
        raise ValueError(
            f"{name} {requested} is past the last of the {count} test images; give 0..{count - 1}, "
            "or leave it out for the middle one"
        )
    return requested


def build_report(
    checkpoint: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    image_index: int | None = None,
    entropy_index: int | None = None,
    tsne_samples: int = DEFAULT_TSNE_SAMPLES,
    device: str = "auto",
    progress: ReportProgress = _ignore,
) -> Report:
    """Look inside a trained model and write the report.

    Writes to ``out``: the PNGs of :data:`FIGURE_FILES`, ``report.json`` (every number),
    ``report.md`` (referencing the PNGs) and ``report.html`` (one file, figures embedded,
    no network). Every entropy is in nats; see :mod:`lettercnn.report.entropy` for the
    definitions.

    Args:
        checkpoint: a run folder (its ``best.pt``) or a ``.pt`` file.
        data: an image tree to take test images from; None: the run's own test split
            (see :mod:`lettercnn.report.features`).
        out: the report folder; None: :func:`default_out_dir`.
        image_index: test image whose conv-layer 0 and 1 feature maps are drawn; None:
            the middle one of the test set (:func:`pick_index`).
        entropy_index: test image of the per-image entropy table; None: the same image
            as the feature maps.
        tsne_samples: most test images in each t-SNE map.
        device: "auto", "cpu" or "cuda".
        progress: ``progress(step, done, total)`` during the slow steps.

    Returns:
        The report; ``report.html`` is its :attr:`Report.html`.

    Raises:
        FileNotFoundError: no checkpoint, or no data folder.
        ValueError: a bad option (an index past the last test image too), not a
            lettercnn checkpoint, too few test images.
    """
    from lettercnn.nn.checkpoint import resolve_checkpoint
    from lettercnn.report.features import extract_features, load_model, load_test_images, strongest_kernel_share
    from lettercnn.training.evaluate import resolve_device

    started = time.perf_counter()
    _check_options(image_index, entropy_index, tsne_samples)
    checkpoint_file = resolve_checkpoint(checkpoint)
    run_dir = checkpoint_file.parent
    out_dir = Path(out) if out is not None else default_out_dir(checkpoint)
    model, payload = load_model(checkpoint_file, resolve_device(device))
    test = load_test_images(payload.get("train_config"), data, progress)
    samples = tsne.pick_samples(len(test.targets), tsne_samples)
    count = len(test.targets)
    feature_index = pick_index(image_index, count, "image_index")
    entropy_at = feature_index if entropy_index is None else pick_index(entropy_index, count, "entropy_index")
    features = extract_features(model, test.glyphs, progress)
    feature_image = _image_entropy(test, features, feature_index)
    entropy_image = _image_entropy(test, features, entropy_at)
    test_set = _test_set_entropy(test, features)
    calibrated, curve = _measure_confidence(model, payload.get("train_config"), data, test, features, progress)
    paths = {key: out_dir / name for key, name in FIGURE_FILES.items()}
    drawn = [
        *_draw_model(model, test.glyphs[feature_image.index], feature_image, paths),
        *_draw_patterns(model, test, features, paths),
        *_draw_tsne(features, test.targets[samples], samples, paths, progress),
        *_draw_entropy(entropy_image, test_set, paths),
        *_draw_training(test, features, run_dir, paths),
        *_draw_confidence(calibrated, curve, paths),
    ]
    report = Report(
        out_dir, checkpoint_file, run_dir.name, test.source, len(test.targets),
        float((features.logits.argmax(1) == test.targets).mean()), _run_accuracy(run_dir),
        feature_image, entropy_image, test_set, len(samples), tsne_samples, tsne.perplexity_for(len(samples)),
        [list(shape) for shape in features.block_shapes],
        strongest_kernel_share(model.block2.conv.weight.detach().cpu().numpy()), calibrated,
        {key: name for key, name in FIGURE_FILES.items() if key in drawn}, time.perf_counter() - started,
    )  # fmt: skip
    write_json(out_dir / REPORT_JSON, report.to_dict())
    write_text(out_dir / REPORT_MD, page.render_markdown(report))
    write_text(out_dir / REPORT_HTML, page.render_html(report))
    return report


def _image_entropy(test: LabelledGlyphs, features: Features, index: int) -> ImageEntropy:
    """The entropies of test image ``index``."""
    log_p = entropy.log_softmax(features.logits[index])
    best = int(log_p.argmax())
    return ImageEntropy(
        index, LETTERS[int(test.targets[index])], LETTERS[best], float(np.exp(log_p[best])),
        float(features.input_entropy[index]), [float(v) for v in features.block_entropy[index]],
        float(entropy.prediction_entropy(features.logits[index])),
    )  # fmt: skip


def _test_set_entropy(test: LabelledGlyphs, features: Features) -> TestSetEntropy:
    """Means of the per-image entropies, and the set-level ones."""
    return TestSetEntropy(
        input=float(features.input_entropy.mean()),
        blocks=[float(v) for v in features.block_entropy.mean(axis=0)],
        prediction=float(entropy.prediction_entropy(features.logits).mean()),
        random_guess=entropy.uniform_entropy(NUM_CLASSES),
        labels=entropy.label_entropy(test.targets, NUM_CLASSES),
        cross_entropy=entropy.cross_entropy(features.logits, test.targets),
        input_zeros=float((test.glyphs == 0).mean()),
        block_zeros=[float(v) for v in features.block_zeros.mean(axis=0)],
    )


def _run_accuracy(run_dir: Path) -> float | None:
    """The test accuracy in the run's metrics.json, if it has one that says it."""
    try:
        return float(read_metrics(run_dir)["test"]["accuracy"])
    except (ValueError, KeyError, TypeError):
        return None


def _draw_model(model: LetterCNN, glyph: np.ndarray, image: ImageEntropy, paths: dict[str, Path]) -> list[str]:
    """The kernels of conv layers 0 and 1, and their feature maps for ``glyph``."""
    from lettercnn.report.features import first_feature_maps

    for layer, conv in enumerate((model.block1.conv, model.block2.conv)):
        weight = conv.weight.detach().cpu().numpy()  # (out, in, k, k)
        out_channels, in_channels, height, width = weight.shape
        inputs = "1 input channel" if in_channels == 1 else f"{in_channels} input channels"
        title = f"Conv layer {layer}: {out_channels} kernels {height}x{width} over {inputs}"
        figures.save_kernels(weight, paths[f"kernels_conv{layer}"], title=title)
    read = f"true {image.true_letter}, read {image.letter} ({image.confidence:.1%})"
    for layer, maps in enumerate(first_feature_maps(model, glyph)):
        title = f"Conv layer {layer} (block {layer + 1}: conv, BN, ReLU), test image #{image.index}: {read}"
        figures.save_feature_maps(glyph, maps, paths[f"feature_maps_conv{layer}"], title=title)
    return ["kernels_conv0", "kernels_conv1", "feature_maps_conv0", "feature_maps_conv1"]


def _draw_patterns(model: LetterCNN, test: LabelledGlyphs, features: Features, paths: dict[str, Path]) -> list[str]:
    """What each channel of conv layer 1 responds to, as mean input patches."""
    from lettercnn.report.features import channel_patterns, receptive_radius

    radius = receptive_radius(model)
    patterns = channel_patterns(test.glyphs, features, radius)
    side = 2 * radius + 1
    title = f"Conv layer 1: what each output channel responds to ({side}x{side} input pixels)"
    figures.save_channel_patterns(patterns, paths["conv1_patterns"], title=title)
    return ["conv1_patterns"]


def _draw_tsne(
    features: Features, targets: np.ndarray, samples: np.ndarray, paths: dict[str, Path], progress: ReportProgress
) -> list[str]:
    """t-SNE maps of the 256-d features and of the logits, for the picked samples."""
    maps = {
        "tsne_hidden": (features.hidden, "256-d feature (Linear, BN1d, ReLU)"),
        "tsne_logits": (features.logits, "logits (26-d)"),
    }
    progress(STEP_TSNE, 0, len(maps))
    for done, (key, (values, name)) in enumerate(maps.items(), start=1):
        points = tsne.tsne_2d(values[samples])
        title = f"t-SNE of the {name}, {len(samples)} test images"
        figures.save_tsne(points, targets, paths[key], title=title)
        progress(STEP_TSNE, done, len(maps))
    return list(maps)


def _draw_entropy(image: ImageEntropy, test_set: TestSetEntropy, paths: dict[str, Path]) -> list[str]:
    """The entropy chart: per stage, the one image and the test-set mean; reference lines."""
    stages = ["input", *BLOCK_NAMES, "prediction"]
    values = {
        f"test image #{image.index}": [image.input, *image.blocks, image.prediction],
        "test-set mean": [test_set.input, *test_set.blocks, test_set.prediction],
        REFERENCE_NAME: [REFERENCE["input"], *REFERENCE["blocks"], None],
    }
    lines = {
        "random guess": test_set.random_guess,
        "labels": test_set.labels,
        "model cross-entropy": test_set.cross_entropy,
    }
    figures.save_entropy_chart(stages, values, lines, paths["entropy"])
    return ["entropy"]


def _draw_training(test: LabelledGlyphs, features: Features, run_dir: Path, paths: dict[str, Path]) -> list[str]:
    """The run's training curves (when it has a history.json) and the confusion matrix of these test images."""
    from lettercnn.training.plots import save_loss_plot

    drawn = []
    if (run_dir / HISTORY_FILE).is_file():
        save_loss_plot(read_history(run_dir), paths["loss"])
        drawn.append("loss")
    cells = test.targets * NUM_CLASSES + features.logits.argmax(1)  # (n,) flat index of (true, predicted)
    confusion = np.bincount(cells, minlength=NUM_CLASSES * NUM_CLASSES).reshape(NUM_CLASSES, NUM_CLASSES)
    title = f"{run_dir.name}: test accuracy {np.trace(confusion) / confusion.sum():.2%}"
    figures.save_confusion(confusion, paths["confusion"], title=title)
    return [*drawn, "confusion"]


def _measure_confidence(
    model: LetterCNN,
    train_config: dict[str, Any] | None,
    data: str | os.PathLike[str] | None,
    test: LabelledGlyphs,
    features: Features,
    progress: ReportProgress,
) -> tuple[Confidence, list[CoveragePoint]]:
    """Calibrate on the run's validation letters as ``letters export`` does, and measure the
    test letters and rendered non-letters; also the risk-coverage curve at every threshold.

    The validation letters are those ``letters eval`` fits its temperature on
    (:func:`lettercnn.training.evaluate.held_out`); the non-letters come from the stream
    export calibrates with and training never draws (``val-negatives``, the run's seed),
    as many as the test letters up to export's count, so that for a full run they are
    the very images export counted.
    """
    from lettercnn.data import synthetic_negatives
    from lettercnn.export import CALIBRATION_MIN_NEGATIVES
    from lettercnn.training.evaluate import held_out, model_logits

    device = str(next(model.parameters()).device)
    val_logits, val_targets = None, None
    try:
        val = held_out("val", train_config, data, progress=lambda done, total: progress(STEP_VALIDATION, done, total))
    except (ValueError, FileNotFoundError) as err:
        fitted_on = f"nothing: {err}"
    else:
        fitted_on = val.source if len(val.targets) else f"nothing: no images in {val.source}"
        val_logits, val_targets = model_logits(model, val.glyphs, device), val.targets
    config = train_config or {}
    count, seed = min(len(test.targets), CALIBRATION_MIN_NEGATIVES), int(config.get("seed", 0))
    others = synthetic_negatives(
        count, seed=seed, split="val-negatives", fonts_dir=config.get("fonts_dir"),
        progress=lambda done, total: progress(STEP_NON_LETTERS, done, total),
    )  # fmt: skip
    other_logits = model_logits(model, others.glyphs, device)
    source = f"{count} rendered images of no letter (blank pages, signs, scribbles ...; val-negatives, seed {seed})"
    calibrated = confidence.measure(
        features.logits, test.targets, val_logits=val_logits, val_targets=val_targets, other_logits=other_logits,
        fitted_on=fitted_on, non_letters_source=source,
    )  # fmt: skip
    thresholds = confidence.curve_thresholds(features.logits, other_logits, calibrated.temperature)
    return calibrated, confidence.coverage_points(
        features.logits, test.targets, other_logits, calibrated.temperature, thresholds
    )


def _draw_confidence(calibrated: Confidence, curve: list[CoveragePoint], paths: dict[str, Path]) -> list[str]:
    """The reliability diagrams (before and after calibration) and the risk-coverage curve."""
    panels = [("before calibration (temperature 1)", calibrated.before)]
    if calibrated.after is not None:
        panels.append((f"after: temperature {calibrated.after.temperature:.3g}", calibrated.after))
    title = f"Reliability of the confidence on the {sum(b.count for b in calibrated.before.bins)} test letters"
    figures.save_reliability(panels, paths["reliability"], title=title)
    title = f"Risk-coverage at temperature {calibrated.temperature:.3g}, {calibrated.non_letters} non-letters"
    figures.save_risk_coverage(curve, calibrated.at_threshold, paths["risk_coverage"], title=title)
    return ["reliability", "risk_coverage"]
