"""The report's figures: kernels, channel patterns, feature maps, t-SNE maps, the entropy
chart, the confusion matrix, the reliability diagram and the risk-coverage curve.

Each function draws one PNG with matplotlib's object API (no pyplot: no GUI backend,
no global state) and writes it atomically. The training curves come from
:func:`lettercnn.training.plots.save_loss_plot`, the plot a run folder holds; the
confusion matrix is the run folder's drawn larger, for a page.
matplotlib is imported inside the functions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lettercnn.labels import LETTERS, NUM_CLASSES
from lettercnn.report.tsne import label_positions
from lettercnn.training.plots import PLOT_DPI, save_figure

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.axes import Axes
    from matplotlib.cm import ScalarMappable
    from matplotlib.figure import Figure, SubFigure

    from lettercnn.report.confidence import CoveragePoint, Reliability

# Diverging, white at 0: a kernel's sign is its colour, its magnitude the depth.
KERNEL_CMAP = "RdBu_r"
# Sequential from black: block outputs end in ReLU (or add a ReLU output), so are >= 0.
FEATURE_CMAP = "magma"
# Input pixels as the model sees them: white glyph on black.
PATTERN_CMAP = "gray"
# A 9x9 channel pattern drawn at this many pixels per input pixel, like a kernel.
PATTERN_ZOOM = 4
# Between kernels inside a tile: a grey no weight is drawn in (the colour map has no grey).
GAP_COLOUR = "#707070"
# Inside a tile each weight is drawn as ZOOM x ZOOM pixels and the gaps as 1, so the
# gaps read as thin lines between kernels rather than as a grid as heavy as the weights.
KERNEL_ZOOM = 2
# The kernel colour scale ends at this percentile of |weight|: a few large weights would
# otherwise wash every other kernel out to white. Larger ones get the end colours.
KERNEL_PERCENTILE = 99.5
# conv layer 1's 32 input-channel kernels per output channel, laid out as 4 x 8.
INPUT_TILE_SHAPE = (4, 8)
# Tiles (kernels, output channels, feature maps) per row.
TILES_PER_ROW = 8
# Drawn widths, in pixels at PLOT_DPI, of a grid of 64 tiles (conv layer 1's kernels,
# any feature maps) and of conv layer 0's 32 small kernels; and of what sits beside them.
LARGE_GRID_PX = 1400
SMALL_GRID_PX = 900
COLOUR_BAR_PX = 160
INPUT_PANEL_PX = 250
# The feature maps with the input and colour bar come to the page's width (~1,170 px),
# so the page shows their labels at full size rather than shrunk to 60%.
FEATURE_GRID_PX = 760
TITLE_PX = 90
# Gap between tiles, as a share of a tile's width; the tile labels' size and band height.
TILE_GAP = 0.08
LABEL_POINTS = 7
LABEL_PX = 16
# Enough qualitative colours for 26 letters: tab20 then the first 6 of Dark2.
PALETTES = (("tab20", 20), ("Dark2", 6))
# Point size of the t-SNE scatter and the letters written on it.
TSNE_POINT_SIZE = 10
TSNE_LETTER_SIZE = 12
# Styles of the entropy chart's reference lines, and the space left above its bars.
LINE_STYLES = ("--", ":", "-.")
CHART_HEADROOM = 1.35
# The confusion matrix on the page: about 1,200 x 1,080 pixels (the page is 1,200 wide),
# its mistake counts large enough to read there (the run folder's are 6 points).
CONFUSION_SIZE = (10.0, 9.0)
CONFUSION_POINTS = 11
MISTAKE_COLOUR = "#b00020"
# Reliability diagram: bars of accuracy, dots of mean confidence, counts below on a log
# scale (most letters sit in the top bin); the bottom panel's share of the height.
ACCURACY_COLOUR = "tab:blue"
CONFIDENCE_COLOUR = "tab:orange"
COUNT_COLOUR = "0.55"
COUNT_PANEL_SHARE = 0.3
# Risk-coverage: the letters' accuracy and the non-letters refused, and the chosen threshold.
REFUSED_COLOUR = "tab:red"
THRESHOLD_COLOUR = "0.15"


def _mosaic(kernels: np.ndarray, rows: int, cols: int, zoom: int = KERNEL_ZOOM) -> np.ndarray:
    """Kernels ``(rows*cols, k, k)`` as one ``rows x cols`` image, each weight ``zoom`` pixels
    square, with 1-pixel NaN gaps between kernels."""
    count, size, _ = kernels.shape
    side = size * zoom
    mosaic = np.full((rows * (side + 1) - 1, cols * (side + 1) - 1), np.nan, dtype=np.float32)
    block = np.ones((zoom, zoom), dtype=np.float32)
    for index in range(count):
        top, left = (position * (side + 1) for position in divmod(index, cols))
        mosaic[top : top + side, left : left + side] = np.kron(kernels[index], block)
    return mosaic


@dataclass(frozen=True)
class _Grid:
    """Tiles laid out on one white RGBA canvas, a label band above each.

    Attributes:
        image: float RGBA ``(height, width, 4)``.
        origins: ``(top, left)`` of each tile.
        tile_width: width of a tile, pixels.
    """

    image: np.ndarray
    origins: list[tuple[int, int]]
    tile_width: int


def _grid(tiles: Sequence[np.ndarray], cols: int, width_px: float) -> _Grid:
    """Lay RGBA tiles of one shape out, ``cols`` per row, for drawing ``width_px`` wide.

    Drawing all tiles as one image keeps a 64-tile figure one axes (fast), and the label
    band above each tile is sized so that :data:`LABEL_PX` screen pixels fit in it.
    """
    height, width = tiles[0].shape[:2]
    gap = max(1, round(TILE_GAP * width))
    rows = -(-len(tiles) // cols)
    grid_width = cols * width + (cols - 1) * gap
    band = math.ceil(LABEL_PX * grid_width / width_px)
    canvas = np.ones((rows * (band + height) + (rows - 1) * gap, grid_width, 4))
    origins = []
    for index, tile in enumerate(tiles):
        row, col = divmod(index, cols)
        top, left = row * (band + height + gap) + band, col * (width + gap)
        canvas[top : top + height, left : left + width] = tile
        origins.append((top, left))
    return _Grid(canvas, origins, width)


def _draw_grid(
    figure: Figure | SubFigure, grid: _Grid, labels: Sequence[str], mappable: ScalarMappable, label: str, **bar: Any
) -> None:
    """Show a grid in one axes, its tile labels above the tiles, and a colour bar."""
    axes = figure.add_subplot()
    axes.imshow(grid.image, interpolation="nearest")
    for (top, left), text in zip(grid.origins, labels):
        axes.text(left + grid.tile_width / 2, top - 0.5, text, ha="center", va="bottom", fontsize=LABEL_POINTS)
    axes.set_axis_off()
    figure.colorbar(mappable, ax=axes, shrink=0.8, label=label, **bar)


def _rgba(values: np.ndarray, mappable: ScalarMappable, gap: str = GAP_COLOUR) -> np.ndarray:
    """Values -> float RGBA through a colour map and scale; NaN -> the gap colour."""
    from matplotlib.colors import to_rgba

    rgba = mappable.to_rgba(values)  # (..., 4)
    rgba[np.isnan(values)] = to_rgba(gap)
    return rgba


def _figure_for(grid: _Grid, width_px: float, extra_width_px: float) -> Figure:
    """A figure whose grid axes is ``width_px`` wide at :data:`PLOT_DPI`, sized to the grid's aspect."""
    from matplotlib.figure import Figure

    height_px = width_px * grid.image.shape[0] / grid.image.shape[1]
    size = ((width_px + extra_width_px) / PLOT_DPI, (height_px + TITLE_PX) / PLOT_DPI)
    return Figure(figsize=size, layout="constrained")


def save_kernels(weight: np.ndarray, path: str | os.PathLike[str], *, title: str) -> None:
    """Draw the kernels of one conv layer with one colour scale, symmetric about 0.

    The scale ends at the :data:`KERNEL_PERCENTILE` percentile of |weight| (the colour
    bar's arrows): the few larger weights are drawn in the end colours.

    A layer over one input channel ``(out, 1, k, k)`` draws one tile per kernel,
    :data:`TILES_PER_ROW` per row. A layer over several ``(out, in, k, k)`` draws one
    tile per output channel, :data:`TILES_PER_ROW` per row; inside a tile, that
    channel's ``in`` kernels in a :data:`INPUT_TILE_SHAPE` grid (input channel 0 top
    left, row by row) with 1-pixel grey gaps.

    Args:
        weight: the layer's weight.
        path: the PNG to write.
        title: the figure title.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    limit = float(np.percentile(np.abs(weight), KERNEL_PERCENTILE)) or 1.0
    mappable = ScalarMappable(norm=Normalize(-limit, limit), cmap=KERNEL_CMAP)
    out_channels, in_channels = weight.shape[:2]
    if in_channels == 1:
        tiles = [_rgba(np.kron(kernel[0], np.ones((KERNEL_ZOOM, KERNEL_ZOOM))), mappable) for kernel in weight]
        labels, width_px = [str(o) for o in range(out_channels)], SMALL_GRID_PX
    else:
        tiles = [_rgba(_mosaic(kernels, *INPUT_TILE_SHAPE), mappable) for kernels in weight]
        labels, width_px = [f"out {o}" for o in range(out_channels)], LARGE_GRID_PX
    grid = _grid(tiles, TILES_PER_ROW, width_px)
    figure = _figure_for(grid, width_px, COLOUR_BAR_PX)
    _draw_grid(figure, grid, labels, mappable, "weight", extend="both")
    figure.suptitle(title)
    save_figure(figure, path)


def save_feature_maps(glyph: np.ndarray, maps: np.ndarray, path: str | os.PathLike[str], *, title: str) -> None:
    """Draw the input glyph beside a conv block's output maps, one colour scale 0..max.

    Args:
        glyph: uint8 ``(32, 32)``, the model's input before normalisation.
        maps: ``(channels, h, w)``, one block's output for that glyph.
        path: the PNG to write.
        title: the figure title.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    mappable = ScalarMappable(norm=Normalize(0.0, float(maps.max()) or 1.0), cmap=FEATURE_CMAP)
    grid = _grid([_rgba(m, mappable) for m in maps], TILES_PER_ROW, FEATURE_GRID_PX)
    figure = _figure_for(grid, FEATURE_GRID_PX, INPUT_PANEL_PX + COLOUR_BAR_PX)
    left, right = figure.subfigures(1, 2, width_ratios=(INPUT_PANEL_PX, FEATURE_GRID_PX + COLOUR_BAR_PX))
    axes = left.subplots()
    axes.imshow(glyph, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    axes.set_title("input (32 x 32)", fontsize=10)
    axes.set_axis_off()
    _draw_grid(right, grid, [str(c) for c in range(len(maps))], mappable, "activation")
    figure.suptitle(title)
    save_figure(figure, path)


def save_channel_patterns(patterns: np.ndarray, path: str | os.PathLike[str], *, title: str) -> None:
    """Draw what each channel responds to as grey input patches, one scale 0..255.

    Args:
        patterns: ``(channels, k, k)`` mean input patches, pixel values 0..255
            (:func:`lettercnn.report.features.channel_patterns`).
        path: the PNG to write.
        title: the figure title.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    mappable = ScalarMappable(norm=Normalize(0.0, 255.0), cmap=PATTERN_CMAP)
    zoom = np.ones((PATTERN_ZOOM, PATTERN_ZOOM))
    grid = _grid([_rgba(np.kron(pattern, zoom), mappable) for pattern in patterns], TILES_PER_ROW, SMALL_GRID_PX)
    figure = _figure_for(grid, SMALL_GRID_PX, COLOUR_BAR_PX)
    _draw_grid(figure, grid, [f"out {c}" for c in range(len(patterns))], mappable, "mean input pixel")
    figure.suptitle(title)
    save_figure(figure, path)


def save_confusion(counts: np.ndarray, path: str | os.PathLike[str], *, title: str) -> None:
    """A 26x26 confusion matrix for the page: colour is the share of each true letter, the
    mistakes are counted in large red figures on a white halo.

    Args:
        counts: ``(26, 26)``, ``counts[true, predicted]``.
        path: the PNG to write.
        title: the figure title.
    """
    from matplotlib import patheffects
    from matplotlib.figure import Figure

    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)  # (26, 26)
    figure = Figure(figsize=CONFUSION_SIZE, layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(NUM_CLASSES), LETTERS)
    axes.set_yticks(range(NUM_CLASSES), LETTERS)
    axes.tick_params(labelsize=10, top=True, labeltop=True)
    axes.set(xlabel="predicted", ylabel="true", title=title)
    style = {"fontsize": CONFUSION_POINTS, "fontweight": "bold", "color": MISTAKE_COLOUR}
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    for true, predicted in zip(*np.nonzero(counts)):
        if true != predicted:
            count = str(counts[true, predicted])
            axes.text(predicted, true, count, ha="center", va="center", path_effects=halo, **style)
    figure.colorbar(image, ax=axes, shrink=0.8, label="share of the true letter")
    save_figure(figure, path)


def letter_colours() -> list[tuple[float, float, float, float]]:
    """26 distinct colours, one per letter."""
    from matplotlib import colormaps

    colours: list[tuple[float, float, float, float]] = []
    for name, count in PALETTES:
        colours.extend(colormaps[name](index) for index in range(count))
    return colours[:NUM_CLASSES]


def save_tsne(points: np.ndarray, targets: np.ndarray, path: str | os.PathLike[str], *, title: str) -> None:
    """Scatter a t-SNE map coloured by letter, each letter written at the centre of its
    cluster(s) (see :func:`lettercnn.report.tsne.label_positions`).

    Args:
        points: ``(n, 2)``.
        targets: ``(n,)`` class indices.
        path: the PNG to write.
        title: the figure title.
    """
    from matplotlib import patheffects
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 7.5), layout="constrained")
    axes = figure.add_subplot()
    colours = letter_colours()
    outline = [patheffects.withStroke(linewidth=3, foreground="white")]
    for index, letter in enumerate(LETTERS):
        mine = points[targets == index]
        if not len(mine):
            continue
        axes.scatter(mine[:, 0], mine[:, 1], s=TSNE_POINT_SIZE, color=colours[index], alpha=0.8, linewidths=0)
        for centre in label_positions(mine):
            # Black on a white halo: legible on any point colour (some of the 26 are pale).
            axes.text(*centre, letter, ha="center", va="center", fontsize=TSNE_LETTER_SIZE, fontweight="bold",
                      color="black", path_effects=outline)  # fmt: skip
    axes.set(title=title, xticks=[], yticks=[])
    save_figure(figure, path)


def save_entropy_chart(
    stages: Sequence[str],
    values: Mapping[str, Sequence[float | None]],
    lines: Mapping[str, float],
    path: str | os.PathLike[str],
) -> None:
    """Grouped bars of entropy per stage (one group per stage, one bar per series), in nats.

    Args:
        stages: the x labels, e.g. ``("input", "block 1", ..., "prediction")``.
        values: series name -> one value per stage (None: no bar).
        lines: horizontal reference lines, name -> nats.
        path: the PNG to write.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 5.2), layout="constrained")
    axes = figure.add_subplot()
    width = 0.8 / max(len(values), 1)
    positions = np.arange(len(stages))
    for offset, (name, series) in enumerate(values.items()):
        heights = [np.nan if value is None else value for value in series]
        bars = axes.bar(positions + (offset - (len(values) - 1) / 2) * width, heights, width, label=name)
        axes.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    for (name, value), style in zip(lines.items(), LINE_STYLES):
        axes.axhline(value, linestyle=style, color="0.2", linewidth=1.2, label=f"{name}: {value:.2f}")
    top = max([value for series in values.values() for value in series if value is not None] + list(lines.values()))
    axes.set_ylim(0, top * CHART_HEADROOM)  # room for the legend above the bars
    axes.set_xticks(positions, stages)
    axes.set(ylabel="entropy (nats)", title="Entropy per stage, in nats")
    axes.legend(loc="upper center", ncols=3, fontsize=8)
    save_figure(figure, path)


def save_reliability(panels: Sequence[tuple[str, Reliability]], path: str | os.PathLike[str], *, title: str) -> None:
    """Reliability diagrams side by side: per confidence bin, the accuracy (bars) against the
    mean confidence (dots) and the diagonal of perfect calibration; the bin counts below.

    Args:
        panels: (title, reliability) per panel, e.g. before and after calibration.
        path: the PNG to write.
        title: the figure title.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6 * len(panels), 6.2), layout="constrained")
    grid = figure.add_gridspec(2, len(panels), height_ratios=(1 - COUNT_PANEL_SHARE, COUNT_PANEL_SHARE))
    for column, (name, panel) in enumerate(panels):
        top = figure.add_subplot(grid[0, column])
        bottom = figure.add_subplot(grid[1, column], sharex=top)
        _draw_reliability(top, bottom, panel)
        top.set_title(name)
    figure.suptitle(title)
    save_figure(figure, path)


def _draw_reliability(top: Axes, bottom: Axes, panel: Reliability) -> None:
    """One reliability diagram: accuracy and confidence per bin above, counts below."""
    bins = [b for b in panel.bins if b.count]
    lefts = [b.low for b in bins]
    width = panel.bins[0].high - panel.bins[0].low
    top.plot([0, 1], [0, 1], "--", color="0.4", linewidth=1, label="perfect calibration")
    top.bar(lefts, [b.accuracy for b in bins], width, align="edge", color=ACCURACY_COLOUR, alpha=0.75,
            edgecolor="white", label="accuracy in the bin")  # fmt: skip
    top.plot([b.low + width / 2 for b in bins], [b.confidence for b in bins], "o", color=CONFIDENCE_COLOUR,
             label="mean confidence in the bin")  # fmt: skip
    top.set(ylim=(0, 1), xlim=(0, 1), ylabel="accuracy")
    top.tick_params(labelbottom=False)
    top.legend(loc="upper left", fontsize=9, title=f"ECE {panel.ece:.2%}, NLL {panel.nll:.3f} nats")
    bars = bottom.bar(lefts, [b.count for b in bins], width, align="edge", color=COUNT_COLOUR, edgecolor="white")
    bottom.bar_label(bars, fontsize=7, padding=1)
    bottom.set_yscale("log")
    bottom.set_ylim(0.8, max(b.count for b in bins) * 6)  # room for the labels above the tallest bar
    bottom.set(xlabel="confidence (top probability)", ylabel="letters")


def save_risk_coverage(
    curve: Sequence[CoveragePoint], chosen: CoveragePoint | None, path: str | os.PathLike[str], *, title: str
) -> None:
    """The risk-coverage curve: as the threshold rises, the share of letters answered (x)
    against the accuracy among them (top) and the share of non-letters refused (bottom).

    Args:
        curve: one point per threshold (non-letters' ``refused`` None: no bottom panel).
        chosen: the threshold to mark, or None.
        path: the PNG to write.
        title: the figure title.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    refusals = any(p.refused is not None for p in curve)
    figure = Figure(figsize=(10, 7.5 if refusals else 5), layout="constrained")
    top, *rest = figure.subplots(2 if refusals else 1, 1, sharex=True, squeeze=False)[:, 0]
    answered = [p for p in curve if p.accuracy is not None]
    top.plot([p.answered for p in answered], [p.accuracy for p in answered], color=ACCURACY_COLOUR)
    top.set(ylabel="test letters: right among\nthe answered", xlim=(0, 1))
    panels = [(top, chosen.accuracy if chosen else None, ACCURACY_COLOUR)]
    if rest:
        bottom = rest[0]
        bottom.plot([p.answered for p in curve], [p.refused for p in curve], color=REFUSED_COLOUR)
        bottom.set(ylabel="images of no letter:\nshare refused", ylim=(0, 1))
        panels.append((bottom, chosen.refused if chosen else None, REFUSED_COLOUR))
    for axes, value, colour in panels:
        axes.grid(alpha=0.3)
        axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        axes.xaxis.set_major_formatter(PercentFormatter(1.0))
        if chosen is not None:
            label = f"threshold {chosen.threshold:.4g}: {chosen.answered:.1%} of the letters answered"
            axes.axvline(chosen.answered, linestyle=":", color=THRESHOLD_COLOUR, linewidth=1.2, label=label)
            if value is not None:
                axes.plot([chosen.answered], [value], "o", color=colour)
                axes.annotate(f"{value:.1%}", (chosen.answered, value), xytext=(-8, 0), textcoords="offset points",
                              ha="right", va="center", color=colour, fontweight="bold")  # fmt: skip
    if chosen is not None:
        top.legend(loc="lower left", fontsize=9)
    panels[-1][0].set_xlabel("share of the test letters answered (coverage): the threshold rises to the left")
    figure.suptitle(title)
    save_figure(figure, path)
