"""The report as text: one list of blocks, rendered as Markdown and as self-contained HTML.

:func:`document` writes the report once, as headings, paragraphs, tables, figures and
links; :func:`render_markdown` refers to the PNG files beside it, :func:`render_html`
embeds them as base64 ``data:`` URIs with inline CSS, so the page opens from disk with
no network and names no external address. The one figure too fine to read at page
width (:data:`LINKED_FIGURES`) is linked, a relative link to the PNG beside the page.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from lettercnn import __version__
from lettercnn.calibration import ECE_BINS
from lettercnn.labels import NUM_CLASSES
from lettercnn.report.entropy import REFERENCE, REFERENCE_NAME
from lettercnn.report.features import PATTERN_IMAGES

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from lettercnn.report.build import Report
    from lettercnn.report.confidence import Confidence

# Entropies are shown with this many decimals everywhere.
DECIMALS = 2
# How close to ln 26 the labels' entropy must be to call the test set balanced.
BALANCED_TOLERANCE = 1e-3
# Letters whose names begin with a vowel sound: "an A", "an M", but "a B".
AN_LETTERS = frozenset("AEFHILMNORSX")
# Figures linked from the page rather than embedded: conv layer 1's 2,048 kernels are
# 10 screen pixels each at page width, noise to the eye; the page shows a summary.
LINKED_FIGURES = frozenset({"kernels_conv1"})
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1200px;
       margin: 2em auto; padding: 0 1em; color: #1b1b1b; line-height: 1.5; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: .25em .7em; }
th { background: #eee; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { color: #333; font-size: .95em; margin-top: .4em; }
"""


@dataclass(frozen=True)
class Heading:
    """A section heading; level 1 is the title."""

    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    """Plain text."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table: a header row, then rows of cells; cells that parse as numbers align right."""

    header: tuple[str, ...]
    rows: list[tuple[str, ...]]


@dataclass(frozen=True)
class Figure:
    """A PNG beside the report, and its caption."""

    file: str
    caption: str


@dataclass(frozen=True)
class Link:
    """A link to a file beside the report (a figure not embedded), and its text."""

    file: str
    text: str


Block = Union[Heading, Paragraph, Table, Figure, Link]


def _a(letter: str) -> str:
    """'A' -> 'an A', 'B' -> 'a B'."""
    return f"{'an' if letter in AN_LETTERS else 'a'} {letter}"


def _nats(value: float | None) -> str:
    """3.2581 -> '3.26'; None -> '-'."""
    return "-" if value is None else f"{value:.{DECIMALS}f}"


def _figure(report: Report, key: str, caption: str) -> list[Block]:
    """The figure ``key`` if the report drew it: embedded, or linked if in :data:`LINKED_FIGURES`."""
    if key not in report.figures:
        return []
    return [Link(report.figures[key], caption) if key in LINKED_FIGURES else Figure(report.figures[key], caption)]


def document(report: Report) -> list[Block]:
    """The whole report, section by section.

    Args:
        report: a finished report (its numbers and figure files).

    Returns:
        The blocks, in reading order.
    """
    return [
        *_introduction(report),
        *_kernels(report),
        *_feature_maps(report),
        *_tsne(report),
        *_entropy(report),
        *_training(report),
        *_confidence(report),
        Paragraph(
            f"Made by letters report (lettercnn {__version__}) in {report.seconds:.0f} s. "
            "Every number above is in report.json beside this page; every figure is a PNG beside it."
        ),
    ]


def _introduction(report: Report) -> list[Block]:
    run_accuracy = ""
    if report.run_accuracy is not None:
        run_accuracy = f" (the run's metrics.json says {report.run_accuracy:.2%})"
    return [
        Heading(1, f"Inside {report.run}"),
        Paragraph(
            f"Checkpoint {report.checkpoint}. Test images: {report.data_source}; the model reads "
            f"{report.accuracy:.2%} of the {report.test_images} right{run_accuracy}. "
            "What the first two conv layers learned, what they make of one image, how the test set's letters "
            "cluster inside the network, and how much uncertainty each stage removes. "
            "Every entropy in this report is in nats (natural logarithm; 1 nat = 1.44 bits)."
        ),
    ]


def _kernels(report: Report) -> list[Block]:
    return [
        Heading(2, "Kernels"),
        *_figure(report, "kernels_conv0", (
            "Conv layer 0 (block1.conv): its 32 kernels of 5x5 over the one input channel, numbered by output "
            "channel. One colour scale for all of them, symmetric about 0 (red positive, blue negative, white 0), "
            "ending at the 99.5th percentile of |weight| (the few larger weights take the end colours: the arrows "
            "of the colour bar). The layer feeds BatchNorm, so the overall scale of the weights means little; "
            "their patterns are what the channels respond to."
        )),
        *_conv1(report),
    ]  # fmt: skip


def _conv1(report: Report) -> list[Block]:
    inputs, outputs = report.block_shapes[0][0], report.block_shapes[1][0]
    images = min(PATTERN_IMAGES, report.test_images)
    return [
        Paragraph(
            f"Conv layer 1 (block2.conv) has {outputs} output channels, each with {inputs} kernels of 5x5, one per "
            f"feature map of layer 0: {outputs * inputs:,} kernels. Drawn one by one they look like noise: a channel "
            f"spreads its weight over all {inputs} maps (its strongest kernel holds on average "
            f"{report.conv1_strongest_kernel:.1%} of the channel's squared weight; evenly spread would be "
            f"{1 / inputs:.1%}), so no kernel alone shows what the channel does. The figure shows instead what "
            "each output channel responds to, in input pixels."
        ),
        *_figure(report, "conv1_patterns", (
            f"Tile out k: the mean of the 9x9 input patches (all the pixels one position of layer 1 sees, through "
            f"two 5x5 convolutions) centred where channel k peaks, in the {images} test images where its peak is "
            "highest; white is ink, pixels beyond the image's edge count as black. The strokes, bar ends, corners "
            "and curves are the parts of letters each channel detects; a blurred tile is a channel whose "
            "strongest responses vary from image to image."
        )),
        *_figure(report, "kernels_conv1", (
            f"the full grid of conv layer 1's {outputs * inputs:,} kernels, a large PNG beside this page: one tile "
            f"per output channel (out k), inside it its {inputs} kernels, one per input channel, "
            "in 4 rows of 8 (input channel 0 top left) with thin grey gaps; one colour scale, symmetric about 0 "
            "and ending at the 99.5th percentile of |weight|, as above."
        )),
    ]  # fmt: skip


def _feature_maps(report: Report) -> list[Block]:
    image = report.feature_image
    return [
        Heading(2, "Feature maps"),
        Paragraph(
            f"Test image #{image.index} of {report.test_images} (--image-index; by default the middle one): "
            f"{_a(image.true_letter)}, read as {image.letter} with confidence {image.confidence:.2%}. "
            "On the left of each figure, the 32x32 input as the model sees it (white "
            "glyph on black, after the one preprocessing); on the right, the outputs of one conv block for it "
            "(conv, BatchNorm, ReLU), one colour scale per figure from 0 (black) to the largest activation. "
            "The frame around many maps is the zero padding: after normalisation the black background is -1, so "
            "the padding's 0 reads as a grey border to the 5x5 kernels."
        ),
        *_figure(report, "feature_maps_conv0", "Conv layer 0 (block 1): its 32 feature maps, 32x32 each."),
        *_figure(report, "feature_maps_conv1", "Conv layer 1 (block 2): its 64 feature maps, 32x32 each."),
    ]


def _tsne(report: Report) -> list[Block]:
    picked = "all of them" if report.tsne_samples == report.test_images else "picked at random (seed 0)"
    common = (
        f"Each point is one of {report.tsne_samples} test images ({picked}), placed by t-SNE (scikit-learn, "
        f"perplexity {report.tsne_perplexity:g}, PCA start) and coloured by its true letter; the letter is "
        "written at the centre of each of its clusters (upper and lower case often make two). t-SNE keeps "
        "neighbourhoods, not distances: tight, separate "
        "clusters mean the features tell the letters apart; the sizes of clusters and the gaps between them "
        "mean little."
    )
    return [
        Heading(2, "t-SNE"),
        Paragraph(common),
        *_figure(report, "tsne_hidden", (
            "The 256-d feature after Linear, BatchNorm1d and ReLU: the input of the last layer, whose only job "
            "is to draw straight boundaries between the letters."
        )),
        *_figure(report, "tsne_logits", (
            "The 26 logits (before the softmax): letters the model confuses sit side by side here."
        )),
    ]  # fmt: skip


def _entropy(report: Report) -> list[Block]:
    return [
        Heading(2, "Entropy, in nats"),
        *[Paragraph(text) for text in _definitions(report)],
        Heading(3, "One image and the test-set means"),
        Paragraph(_entropy_image_line(report)),
        Paragraph(_reference_origin()),
        _stage_table(report),
        Heading(3, "Test set"),
        _set_table(report),
        *_figure(report, "entropy", (
            "Entropy per stage in nats: the image of the table, the test-set mean and the reference report. "
            "The lines are the random guess (ln 26), the test labels' entropy and the model's cross-entropy. "
            "The bars of different stages are entropies of different variables, each binned over its own range: "
            "they compare within a stage, and only roughly across."
        )),
        Heading(3, "Compared with the reference"),
        *[Paragraph(text) for text in _comparison(report)],
    ]  # fmt: skip


def _definitions(report: Report) -> list[str]:
    """What each number is. Keep in step with lettercnn.report.entropy."""
    shapes = ", ".join(f"{'x'.join(map(str, shape))} for block {i}" for i, shape in enumerate(report.block_shapes, 1))
    return [
        "Every entropy is a Shannon entropy H(p) = -Σ p ln p of a discrete distribution p, with the natural "
        "logarithm, so in nats, and 0 ln 0 = 0.",
        "Input image: p is the histogram of the 1,024 pixel values of the 32x32 glyph the model is fed (white "
        "on black, cropped, centred and scaled by the one preprocessing), as 8-bit values 0-255, one bin per "
        "value: 256 bins. The model's normalisation (x/255 - 0.5)/0.5 moves no pixel to another bin. "
        "From 0 (one grey level) to ln 256 = 5.55 nats.",
        "Conv block k (k = 1..5): p is the histogram of all the values of block k's output for that image, every "
        f"channel and position pooled ({shapes}), in 256 equal-width bins from that image's smallest to its "
        "largest value of that block. Outputs are taken after BatchNorm and ReLU and, for blocks 3 and 5, after "
        "the residual add. The same 256 bins as the input, so the ceiling is ln 256 for every stage; a per-image "
        "range makes the number blind to the scale of the activations and sensitive to their shape.",
        f"Prediction: p is the model's softmax over the {NUM_CLASSES} letters: 0 nats for a certain answer, "
        f"ln {NUM_CLASSES} = {math.log(NUM_CLASSES):.2f} for a uniform one.",
        f"Test-set means: the mean of each per-image entropy over the {report.test_images} test images. "
        f"Random guess: a uniform guess over {NUM_CLASSES} letters, ln {NUM_CLASSES}. Labels: the entropy of "
        "the share of each letter among the test labels (what a guesser who knows the letter frequencies is "
        "left with). Model cross-entropy: the mean over the test images of -ln p(true letter), the test loss: "
        "what the model still leaves, per image, to name the true letter.",
    ]


def _entropy_image_line(report: Report) -> str:
    image = report.entropy_image
    same = " (the image of the feature maps)" if image.index == report.feature_image.index else ""
    return (
        f"Test image #{image.index}{same} is {_a(image.true_letter)}; the model recognises it as {image.letter} "
        f"with confidence {image.confidence:.2%}."
    )


def _reference_origin() -> str:
    """What is known of the reference numbers (see lettercnn.report.entropy.REFERENCE)."""
    labels = REFERENCE["labels"]
    return (
        "The reference column holds the numbers that issue 5 of this project (the issue that asked for this "
        'report) quotes from "a report of this same network on another letter set". Neither the issue nor '
        "anything else in the project names that set or that report, so they cannot be re-run: a rough yardstick, "
        f"not a baseline. The numbers say one thing more: the labels' entropy there, {_nats(labels)} nats, below "
        f"ln {NUM_CLASSES} = {math.log(NUM_CLASSES):.2f}, means its letters were unequally frequent (as spread as "
        f"e^{_nats(labels)} = {math.exp(labels):.1f} equally frequent letters), so it was not a balanced set such "
        "as EMNIST Letters or the synthetic splits here."
    )


def _stage_table(report: Report) -> Table:
    image, test_set = report.entropy_image, report.test_set
    header = ("stage (nats)", f"test image #{image.index}", "test-set mean", REFERENCE_NAME)
    rows = [("input image", _nats(image.input), _nats(test_set.input), _nats(REFERENCE["input"]))]
    for k, (mine, mean, reference) in enumerate(zip(image.blocks, test_set.blocks, REFERENCE["blocks"]), 1):
        rows.append((f"conv block {k}", _nats(mine), _nats(mean), _nats(reference)))
    rows.append(("prediction", _nats(image.prediction), _nats(test_set.prediction), "-"))
    return Table(header, rows)


def _set_table(report: Report) -> Table:
    test_set = report.test_set
    rows = [
        (f"random guess (ln {NUM_CLASSES})", _nats(test_set.random_guess), _nats(REFERENCE["random_guess"])),
        ("test labels", _nats(test_set.labels), _nats(REFERENCE["labels"])),
        ("model cross-entropy", _nats(test_set.cross_entropy), _nats(REFERENCE["cross_entropy"])),
    ]
    return Table(("quantity (nats)", "this model", REFERENCE_NAME), rows)


def _comparison(report: Report) -> list[str]:
    """How our numbers compare with the reference report, and why they differ."""
    return [
        _input_comparison(report),
        _blocks_comparison(report),
        _labels_comparison(report),
        _model_comparison(report),
    ]


def _blocks_comparison(report: Report) -> str:
    ours, reference = report.test_set.blocks, REFERENCE["blocks"]
    zeros = ", ".join(f"{share:.0%}" for share in report.test_set.block_zeros)
    text = (
        f"Conv blocks: {' / '.join(_nats(v) for v in ours)} here against {' / '.join(_nats(v) for v in reference)}. "
        "Blocks 1, 2 and 4 end in a ReLU, while blocks 3 and 5 add their input back after theirs; the shares of "
        f"exactly-zero values are {zeros}. Every exact zero lands in the first bin, so the more zeros, the lower "
        "the entropy. "
    )
    ranks = [sorted(range(len(v)), key=lambda k: -v[k]) for v in (ours, reference)]
    if set(ranks[0][:2]) == set(ranks[1][:2]) and ranks[0][-1] == ranks[1][-1]:
        high = " and ".join(str(k + 1) for k in sorted(ranks[0][:2]))
        text += f"The pattern is the reference's: blocks {high} highest, block {ranks[0][-1] + 1} lowest. "
    above = [str(k) for k, block in enumerate(ours, 1) if block >= report.test_set.input]
    if not above:
        return text + "As in the reference, every block's mean is below the input's."
    which = "every block" if len(above) == len(ours) else f"block{'s' if len(above) > 1 else ''} {', '.join(above)}"
    return text + (
        f"Unlike the reference, {which} sits above our input. That is no information added: a histogram of "
        "thousands of continuous activations, binned over their own range, fills more of its 256 bins than 1,024 "
        "mostly black pixels do (above); histogram entropies of different variables compare only roughly."
    )


def _input_comparison(report: Report) -> str:
    test_set = report.test_set
    ours, reference = test_set.input, REFERENCE["input"]
    why = (
        "An input with a grey background, texture or noise spreads over many more levels, the likeliest reason "
        "for the reference's higher value."
        if ours < reference
        else "The reference's input was more concentrated still."
    )
    return (
        f"Input: {_nats(ours)} here against {_nats(reference)}. Our input is the canonical glyph: on average "
        f"{test_set.input_zeros:.0%} of its pixels are exactly 0 (the black background), and all of those fall "
        "into one of the 256 bins; only the stroke pixels (contrast-stretched ink, anti-aliased edges) spread over "
        f"the other levels. {why}"
    )


def _model_comparison(report: Report) -> str:
    test_set = report.test_set
    ours, reference = test_set.cross_entropy, REFERENCE["cross_entropy"]
    far_below = ours < 0.5 * min(test_set.labels, test_set.random_guess)
    return (
        f"Model: cross-entropy {_nats(ours)} here against {_nats(reference)}, {'far' if far_below else 'not far'} "
        f"below the labels' entropy ({_nats(test_set.labels)}) and the random guess ({_nats(test_set.random_guess)}). "
        f"Of the labels' {_nats(test_set.labels)} nats of uncertainty about the letter the model leaves {_nats(ours)}: "
        f"it removes {1 - ours / test_set.labels:.0%} (the reference removed "
        f"{1 - reference / REFERENCE['labels']:.0%}). Ours is {'lower' if ours < reference else 'higher'}: this model "
        f"reads {report.accuracy:.1%} of {report.data_source} right; the reference's model read its own, "
        "unnamed letter set. "
        f"The mean entropy of its predictions is {_nats(test_set.prediction)} nats."
    )


def _labels_comparison(report: Report) -> str:
    test_set = report.test_set
    if abs(test_set.labels - test_set.random_guess) < BALANCED_TOLERANCE:
        return (
            f"Labels: {_nats(test_set.labels)} = ln {NUM_CLASSES}, against 2.93 in the reference: our test split "
            "holds the same number of each letter, so knowing the letter frequencies helps nothing over a random "
            "guess. The reference's letter set was unbalanced (some letters much more frequent), which lowers it."
        )
    return (
        f"Labels: {_nats(test_set.labels)}, below ln {NUM_CLASSES} = {_nats(test_set.random_guess)} because the "
        "test letters are not equally frequent; the reference's set (2.93) was unbalanced too."
    )


def _training(report: Report) -> list[Block]:
    curves = _figure(report, "loss", (
        "Training curves from the run's history.json: train and validation loss (cross-entropy, nats) per "
        "epoch, and validation accuracy (right axis)."
    ))  # fmt: skip
    missing = [] if curves else [Paragraph("No history.json beside the checkpoint: no training curves.")]
    return [
        Heading(2, "Training"),
        *curves,
        *missing,
        *_figure(report, "confusion", (
            f"Confusion matrix of the {report.test_images} test images above: rows are the true letter, columns "
            "the predicted one; colour is the share of the true letter, the red numbers count the mistakes (a cell "
            "without one: no mistake)."
        )),
    ]  # fmt: skip


def _percent(value: float | None) -> str:
    """0.9512 -> '95.1%'; None -> '-'."""
    return "-" if value is None else f"{value:.1%}"


def _confidence(report: Report) -> list[Block]:
    calibrated = report.confidence
    before, after = calibrated.before, calibrated.after
    rows = [("before: raw softmax", "1", f"{before.ece:.2%}", f"{before.nll:.3f}")]
    if after is not None:
        rows.append(("after calibration", f"{after.temperature:.3f}", f"{after.ece:.2%}", f"{after.nll:.3f}"))
    panels = f"Left: the raw softmax (temperature 1), ECE {before.ece:.2%}, NLL {before.nll:.3f} nats. "
    if after is not None:
        panels += f"Right: after temperature {after.temperature:.3f}, ECE {after.ece:.2%}, NLL {after.nll:.3f} nats. "
    return [
        Heading(2, "Confidence"),
        Paragraph(
            f"Can the model's confidence be taken at its word? The reliability diagram sorts the {report.test_images} "
            f"test letters into {ECE_BINS} bins by their top probability and sets the share read right in each bin "
            "(bar) against the mean confidence there (dot): on the diagonal, an answer given at 90% is right 90% of "
            "the time; below it, the model is surer than it should be. The risk-coverage curve shows what a '?' "
            "threshold buys: raised, it leaves fewer test letters answered but more of those right, and refuses "
            "more images of no letter."
        ),
        Paragraph(_calibration_line(calibrated)),
        Table(("test letters", "temperature", f"ECE ({ECE_BINS} bins)", "NLL (nats)"), rows),
        *_figure(report, "reliability", (
            f"{panels}Bars: accuracy in each confidence bin; dots: the mean confidence there; dashed: perfect "
            "calibration; below, how many test letters fall in each bin (log scale). The ECE is the mean gap "
            "between bar and dot, each bin weighted by its count; the NLL is the mean -ln p(true letter)."
        )),
        _coverage_table(calibrated),
        *_figure(report, "risk_coverage", (
            f"One point per threshold on the calibrated top probability: across, the share of the "
            f"{report.test_images} test letters answered (the threshold rises to the left); above, the accuracy "
            f"among them; below, the share of the {calibrated.non_letters} images of no letter refused. The dotted "
            "line is the threshold letters export writes into the model."
        )),
    ]  # fmt: skip


def _calibration_line(calibrated: Confidence) -> str:
    """How the temperature and the threshold were fitted, and what they do on the test letters."""
    point = calibrated.at_threshold
    if calibrated.after is None or point is None or calibrated.threshold is None:
        return f"No temperature was fitted (fitted on {calibrated.fitted_on}): the figures show the raw softmax."
    refused = "" if point.refused is None else f", and refuses {point.refused:.1%} of {calibrated.non_letters_source}"
    return (
        f"Calibrated as letters export does it: the logits are divided by a temperature, "
        f"{calibrated.after.temperature:.3f}, fitted on {calibrated.fitted_on} to minimise their negative "
        "log-likelihood; it changes no answer, only how sure each one is. The '?' threshold export writes into the "
        f"model, {calibrated.threshold:.4f}, is the highest that keeps {calibrated.min_coverage:.0%} of those "
        f"validation letters answered ({_percent(calibrated.validation_answered)}). On the test letters it answers "
        f"{point.answered:.1%} of them, {_percent(point.accuracy)} of those right{refused}."
    )


def _coverage_table(calibrated: Confidence) -> Table:
    rows = []
    for point in calibrated.table:
        chosen = " (export's '?')" if point.threshold == calibrated.threshold else ""
        rows.append((f"{point.threshold:g}{chosen}", _percent(point.answered), _percent(point.accuracy),
                     _percent(point.refused)))  # fmt: skip
    header = ("threshold", "test letters answered", "right among the answered", "non-letters refused")
    return Table(header, rows)


def render_markdown(report: Report) -> str:
    """The report as Markdown that shows the PNG files beside it."""
    parts: list[str] = []
    for block in document(report):
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            parts.append(block.text)
        elif isinstance(block, Table):
            lines = [_md_row(block.header), _md_row(["---"] * len(block.header))]
            parts.append("\n".join(lines + [_md_row(row) for row in block.rows]))
        elif isinstance(block, Link):
            parts.append(f"[{block.file}]({block.file}): {block.text}")
        else:
            parts.append(f"![{block.file}]({block.file})\n\n*{block.caption}*")
    return "\n\n".join(parts) + "\n"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def render_html(report: Report) -> str:
    """The report as one HTML page: figures embedded from ``report.out_dir``, inline CSS, no URL.

    Raises:
        OSError: a figure file cannot be read.
    """
    body: list[str] = []
    headings = [b for b in document(report) if isinstance(b, Heading) and b.level == 2]
    for block in document(report):
        if isinstance(block, Heading):
            body.append(f'<h{block.level} id="{_anchor(block.text)}">{html.escape(block.text)}</h{block.level}>')
            if block.level == 1:
                links = " ".join(f'<a href="#{_anchor(h.text)}">{html.escape(h.text)}</a>' for h in headings)
                body.append(f"<nav>{links}</nav>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Table):
            body.append(_html_table(block))
        elif isinstance(block, Link):
            file = html.escape(block.file)
            body.append(f'<p class="link"><a href="{file}">{file}</a>: {html.escape(block.text)}</p>')
        else:
            data = base64.b64encode((report.out_dir / block.file).read_bytes()).decode("ascii")
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.file)}">'
                f"<figcaption>{html.escape(block.caption)}</figcaption></figure>"
            )
    title = html.escape(f"Report: {report.run}")
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
        f"<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _anchor(text: str) -> str:
    """'Entropy, in nats' -> 'entropy-in-nats'."""
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in table.header)
    rows = []
    for row in table.rows:
        cells = "".join(
            f'<td class="number">{html.escape(c)}</td>' if _is_number(c) else f"<td>{html.escape(c)}</td>" for c in row
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _is_number(text: str) -> bool:
    """'3.26', '95.1%' -> True; 'input image' -> False."""
    try:
        float(text.removesuffix("%"))
    except ValueError:
        return False
    return True
