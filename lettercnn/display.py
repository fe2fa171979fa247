"""What the command line shows: Rich tables, progress bars and one-line results.

The printing half of :mod:`lettercnn.cli`: the library returns data, these functions
lay it out for a person. Rich's progress module and the training side load only when
a bar or a run is shown.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from lettercnn.runs import EpochRecord

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from rich.progress import TaskID

    from lettercnn.bench import BenchResult
    from lettercnn.calibration import Calibration
    from lettercnn.camera import FrameResult
    from lettercnn.export import ExportReport
    from lettercnn.report.build import Report
    from lettercnn.runtime import FileResult, Recognizer
    from lettercnn.training.average import AverageResult
    from lettercnn.training.evaluate import EvalResult
    from lettercnn.training.loop import Callbacks, RunInfo, RunResult

# Letters listed under "worst" in summaries.
WORST_SHOWN = 5


def say(console: Console, text: str) -> None:
    """Print one plain line, unwrapped, so paths stay whole and copyable."""
    console.print(text, highlight=False, soft_wrap=True, markup=False)


def duration(seconds: float) -> str:
    """42.3 -> '42 s'; 953 -> '15.9 min'."""
    return f"{seconds:.0f} s" if seconds < 100 else f"{seconds / 60:.1f} min"


def percent(value: float | None) -> str:
    """0.9731 -> '97.3%'; None -> '-'."""
    return "-" if value is None else f"{value:.1%}"


class TrainDisplay:
    """Rich progress for :func:`lettercnn.training.loop.fit`: a bar per epoch, a line as each one ends.

    Args:
        console: where to draw.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,  # no bars in logs and pipes; the epoch lines stay
        )
        self.task: TaskID | None = None
        from lettercnn.training.loop import Callbacks

        self.callbacks = Callbacks(
            on_data_progress=self._data,
            on_start=self._start,
            on_epoch_start=self._epoch_start,
            on_batch=self._batch,
            on_epoch_end=self._epoch_end,
            on_warning=self._warning,
        )

    def __enter__(self) -> TrainDisplay:
        self.progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.progress.stop()

    def next_run(self, title: str) -> None:
        """Start showing another run (``letters experiments`` trains several in a row)."""
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        self.console.print(title, style="bold", highlight=False)

    def callbacks_of_variant(self, variant: Any) -> Callbacks:
        """The callbacks of one experiments variant's run, under its title."""
        self.next_run(f"({variant.key}) {variant.title}")
        return self.callbacks

    def _new_task(self, description: str, total: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(description, total=total, stats="")

    def _data(self, done: int, total: int) -> None:
        if self.task is None:
            self._new_task("loading letters", total)
        self.progress.update(self.task, completed=done, total=total)

    def _start(self, info: RunInfo) -> None:
        sizes = ", ".join(f"{size} {split}" for split, size in info.sizes.items())
        say(self.console, f"Data: {info.data_source} ({sizes})")
        resumed = f", resuming after epoch {info.start_epoch}/{info.epochs}" if info.start_epoch else ""
        threads = f"{info.threads} thread{'s' if info.threads != 1 else ''}" if info.device == "cpu" else ""
        if info.processes > 1:
            threads = f"{info.processes} processes" + (f" x {threads}" if threads else "")
        threads = f" ({threads})" if threads else ""
        say(self.console, f"Run: {info.run_dir} on {info.device}{threads}{resumed}")

    def _epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        self._new_task(f"epoch {epoch}/{epochs}", batches)
        self.epochs = epochs

    def _batch(self, loss: float, acc: float, images_per_s: float) -> None:
        stats = f"loss {loss:.3f} acc {acc:.1%} {images_per_s:.0f} img/s"
        self.progress.update(self.task, advance=1, stats=stats)  # type: ignore[arg-type]

    def _epoch_end(self, record: EpochRecord) -> None:
        width = len(str(self.epochs))
        say(
            self.console,
            f"epoch {record.epoch:>{width}}/{self.epochs}  loss {record.train_loss:.3f} acc {record.train_acc:.1%}"
            f"  val loss {record.val_loss:.3f} acc {record.val_acc:.1%}  lr {record.lr:.1e}"
            f"  {record.images_per_s:.0f} img/s  {record.seconds:.0f}s",
        )

    def _warning(self, message: str) -> None:
        self.console.print(f"Warning: {message}", style="yellow", highlight=False, soft_wrap=True, markup=False)


def _read_as(result: EvalResult, letter: str) -> str:
    """What ``letter`` was most often mistaken for, e.g. 'L (5x)'; '-' if never."""
    confused = result.confused_with(letter)
    return "-" if confused is None else f"{confused[0]} ({confused[1]}x)"


def worst_table(result: EvalResult, title: str) -> Table:
    """The letters read worst, with what they were mistaken for."""
    table = Table(title=title, title_justify="left")
    table.add_column("Letter")
    table.add_column("Accuracy", justify="right")
    table.add_column("Most often read as")
    for letter, accuracy in result.worst_classes(WORST_SHOWN):
        table.add_row(letter, percent(accuracy), _read_as(result, letter))
    return table


def print_run(console: Console, result: RunResult) -> None:
    """The summary of a finished run: test scores, worst letters, the run folder."""
    summary = Table(title="Test set", title_justify="left", show_header=False)
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("accuracy", f"{percent(result.test.accuracy)} of {result.test.count} images")
    summary.add_row("loss", f"{result.test.loss:.4f}")
    summary.add_row("best epoch", f"{result.best_epoch} (val accuracy {percent(result.best_val_acc)})")
    summary.add_row("time", f"{duration(result.wall_seconds)} on {result.device}")
    console.print(summary)
    console.print(worst_table(result.test, "Worst letters"))
    say(console, f"Run folder: {result.run_dir}")


def print_evaluation(console: Console, result: EvalResult) -> None:
    """Accuracy, a per-letter table and the most frequent confusions."""
    say(console, f"Accuracy {percent(result.accuracy)} on {result.count} images (loss {result.loss:.4f})")
    say(console, f"Scored: {result.source}")
    fitted = result.calibration
    if fitted is not None:
        line = f"Calibration (ECE 15 bins, NLL): at temperature 1 {percent(fitted['ece_before'])}, {fitted['nll_before']:.4f}"
        if fitted.get("temperature") is not None:
            line += (
                f"; at {fitted['temperature']:.3f} (fitted on {fitted['fitted_on']}, as export does) "
                f"{percent(fitted['ece_after'])}, {fitted['nll_after']:.4f}"
            )
        say(console, line)
    table = Table(title="Per letter", title_justify="left")
    table.add_column("Letter")
    table.add_column("Images", justify="right")
    table.add_column("Accuracy", justify="right")
    table.add_column("Most often read as")
    for index, (letter, accuracy) in enumerate(result.per_class.items()):
        table.add_row(letter, str(sum(result.confusion[index])), percent(accuracy), _read_as(result, letter))
    console.print(table)
    mistakes = result.top_confusions(WORST_SHOWN)
    if mistakes:
        listed = ", ".join(f"{true}->{predicted} {count}x" for true, predicted, count in mistakes)
        say(console, f"Most frequent confusions (true->predicted): {listed}")


def print_average(console: Console, result: AverageResult) -> None:
    """``letters average``: each run and the average, on the first run's splits; the new folder."""
    table = Table(title="Weights averaged", title_justify="left")
    for header in ("Model", "Val acc", "Test acc"):
        table.add_column(header, justify="left" if header == "Model" else "right")
    for row in [*result.runs, result.average]:
        table.add_row(row.name, percent(row.val_accuracy), percent(row.test_accuracy))
    console.print(table)
    say(console, f"Scored: {result.source} and its validation split")
    say(console, f"Run folder: {result.run_dir} (export it: letters export --checkpoint {result.run_dir})")


def comparison_table(rows: list[Any]) -> Table:
    """The three-way comparison of ``letters experiments``."""
    table = Table(title="BatchNorm and dropout compared", title_justify="left")
    for header in ("Run", "Test acc", "Test loss", "Best epoch (val)", "Train loss", "Val loss", "Time"):
        table.add_column(header, justify="left" if header == "Run" else "right")
    for row in rows:
        table.add_row(
            f"({row.variant.key}) {row.run_dir.name}", percent(row.test_accuracy),
            f"{row.test_loss:.4f}", f"{row.best_epoch} ({percent(row.best_val_acc)})", f"{row.final_train_loss:.4f}",
            f"{row.final_val_loss:.4f}", duration(row.wall_seconds),
        )  # fmt: skip
    return table


@contextlib.contextmanager
def step_bars(console: Console) -> Iterator[Callable[[str, int, int], None]]:
    """Rich bars, one per slow step, and the ``progress(step, done, total)`` callback that drives them."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        tasks: dict[str, TaskID] = {}

        def update(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = progress.add_task(step, total=total)
            progress.update(tasks[step], completed=done, total=total)

        yield update


@contextlib.contextmanager
def progress_bar(console: Console, description: str) -> Iterator[Callable[[int, int], None]]:
    """A Rich bar, and the ``progress(done, total)`` callback that drives it."""
    with step_bars(console) as update:
        yield lambda done, total: update(description, done, total)


def int8_table(report: Any) -> Table:
    """fp32 against int8: size and validation accuracy."""
    table = Table(title=f"fp32 vs int8 on {report.val_images} validation images", title_justify="left")
    for column in ("model", "size", "accuracy", "top-1 agreement"):
        table.add_column(column, justify="left" if column == "model" else "right")
    table.add_row("fp32", f"{report.fp32_size / 1e6:.1f} MB", f"{report.fp32_accuracy:.2%}", "")
    table.add_row("int8", f"{report.int8_size / 1e6:.1f} MB", f"{report.int8_accuracy:.2%}", f"{report.agreement:.2%}")
    table.caption = f"validation: {report.validation}; calibration: {report.calibration}"
    return table


def entropy_table(report: Any) -> Table:
    """The report's entropies, in nats: one image, the test-set means, the reference report."""
    from lettercnn.report.entropy import REFERENCE as reference

    image, test_set = report.entropy_image, report.test_set
    table = Table(title="Entropy (nats)", title_justify="left")
    for column in ("", f"image #{image.index}", "test-set mean", "reference"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("input image", f"{image.input:.2f}", f"{test_set.input:.2f}", f"{reference['input']:.2f}")
    for k, (mine, mean, ref) in enumerate(zip(image.blocks, test_set.blocks, reference["blocks"]), 1):
        table.add_row(f"conv block {k}", f"{mine:.2f}", f"{mean:.2f}", f"{ref:.2f}")
    table.add_row("prediction", f"{image.prediction:.2f}", f"{test_set.prediction:.2f}", "-")
    for name, key in (("random guess (ln 26)", "random_guess"), ("test labels", "labels"),
                      ("model cross-entropy", "cross_entropy")):  # fmt: skip
        table.add_row(name, "", f"{getattr(test_set, key):.2f}", f"{reference[key]:.2f}")
    return table


def _ms(latency: Any) -> str:
    """A bench Latency as 'median / p90' milliseconds."""
    return "-" if latency is None else f"{latency.median:.2f} / {latency.p90:.2f}"


def bench_table(result: Any, threads: int) -> Table:
    """One thread count's rows: latency, throughput, size, accuracy, speed-up over the first row."""
    from lettercnn import bench

    small, large = result.batches[0], max(result.batches)
    table = Table(title=f"{threads} thread{'s' if threads > 1 else ''}", title_justify="left")
    table.add_column("path")
    table.add_column(f"batch {small} ms", justify="right")
    if large != small:
        table.add_column(f"batch {large} img/s", justify="right")
        table.add_column(f"batch {large} GFLOP/s", justify="right")
    for column in ("size", "accuracy", "ECE before → after", "NLL before → after", f"× row 1 (batch {small})"):
        table.add_column(column, justify="right")
    for row in (row for row in result.rows if row.threads == threads):
        cells = [row.path, _ms(row.latency_ms.get(small))]
        if large != small:
            cells += [f"{row.images_per_s(large):,.0f}", f"{row.gflops(large):.1f}"]
        speedup = result.speedup(row, small)
        cells += [
            f"{row.size_bytes / 1e6:.1f} MB",
            percent(row.accuracy),
            "-" if row.ece is None else f"{percent(row.ece[0])} → {percent(row.ece[1])}",
            "-" if row.nll is None else f"{row.nll[0]:.3f} → {row.nll[1]:.3f}",
            "-" if speedup is None else f"{speedup:.2f}×",
        ]
        table.add_row(*cells)
    gemm = result.matmul_gflops.get(threads, {})
    ort_row = next((row for row in result.rows if row.threads == threads and row.path == bench.ORT_FP32), None)
    ort_gflops = ort_row.gflops(large, peak=True) if ort_row is not None and large != small else None
    caption = ["latency: median / 90th percentile; img/s and GFLOP/s from the median"]
    if ort_gflops:
        caption.append(f"peak (fastest run): onnxruntime fp32 network at batch {large} {ort_gflops:.1f} GFLOP/s")
    for engine, gflops in gemm.items():
        share = f" — the network runs at {ort_gflops / gflops:.0%} of it" if ort_gflops else ""
        caption.append(f"peak fp32 {bench.MATMUL_N}³ matrix product, {engine}: {gflops:.1f} GFLOP/s{share}")
    table.caption = "\n".join(caption)
    return table


def recognize_line(result: FileResult) -> str:
    """One line per image: path, answer, confidence, alternatives, ms."""
    if len(result.predictions) == 1:
        best = result.predictions[0]
        alternatives = " ".join(f"{letter} {p:.2f}" for letter, p in best.top_k[1:])
        if not best.top_k:
            alternatives = "no letter found: a blank image"
        elif best.reason is not None:  # below the threshold: say what it might have been
            guesses = " ".join(f"{letter} {p:.2f}" for letter, p in best.top_k)
            alternatives = f"{best.reason}; best guesses {guesses}"
        line = f"{result.path}: {best.letter} {best.confidence:.2f}  ({alternatives})  {result.ms:.1f} ms"
        return line if result.hint is None else f"{line}\n  hint: {result.hint}"
    letters = " ".join(f"{p.letter}:{p.confidence:.2f}" for p in result.predictions)
    return f"{result.path}: {result.text or '(no letters)'}  [{letters}]  {result.ms:.1f} ms"


def speed_line(recognizer: Recognizer) -> str:
    """Where a recognizer's time went, per image."""
    spent = recognizer.spent
    preprocess_ms, inference_ms = spent.per_image()
    return (
        f"Speed: {preprocess_ms:.1f} ms preprocess, {inference_ms:.1f} ms inference per image "
        f"({spent.images} image{'s' if spent.images != 1 else ''}, model {recognizer.path.name})"
    )


def frame_line(result: FrameResult, fps: float) -> str:
    """One camera frame whose answer changed."""
    return f"frame {result.index}: {result.shown} ({result.prediction.confidence:.2f}, {fps:.0f} FPS)"


def print_export(console: Console, report: ExportReport) -> None:
    """What export wrote: one summary line, the ops, and the parity table."""
    say(console, report.summary())
    say(console, "ops: " + ", ".join(f"{op} {count}" for op, count in sorted(report.op_counts.items())))
    table = Table(title="Parity torch (img2col) vs onnxruntime", title_justify="left")
    for column in ("inputs", "samples", "max |Δlogit|", "top-1 agreement"):
        table.add_column(column, justify="right" if column != "inputs" else "left")
    for parity in report.parity:
        table.add_row(parity.name, str(parity.samples), f"{parity.max_abs_diff:.2e}", percent(parity.top1_agreement))
    console.print(table)
    if report.calibration is not None:
        console.print(calibration_table(report.calibration))
    else:
        say(console, f"Not calibrated (temperature 1, no default '?' threshold): {report.calibration_note}")


def calibration_table(fitted: Calibration) -> Table:
    """Temperature, ECE and NLL before and after, and what the "?" threshold does."""
    table = Table(title=f"Calibration: temperature {fitted.temperature:.3f}", title_justify="left")
    for column in ("", "ECE (15 bins)", "NLL"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("before (T = 1)", percent(fitted.ece_before), f"{fitted.nll_before:.4f}")
    table.add_row(f"after (T = {fitted.temperature:.3f})", percent(fitted.ece_after), f"{fitted.nll_after:.4f}")
    refused = "" if fitted.refused != fitted.refused else f", {percent(fitted.refused)} of images of no letter '?'"
    table.caption = (
        f"'?' below {fitted.min_confidence:.4f}: {percent(fitted.coverage)} of validation letters answered, "
        f"{percent(fitted.accuracy_answered)} of those right{refused}. On: {fitted.source}"
    )
    return table


def print_report(console: Console, report: Report) -> None:
    """What the report found: the test images, one image's reading, the entropies, the page."""
    say(
        console, f"Test images: {report.data_source}; {percent(report.accuracy)} of the {report.test_images} read right"
    )
    image = report.entropy_image
    say(
        console,
        f"Image #{image.index}: a {image.true_letter}, recognised as {image.letter} ({percent(image.confidence)})",
    )
    console.print(entropy_table(report))
    say(console, confidence_line(report.confidence))
    say(console, f"Report ({duration(report.seconds)}): {report.html}")


def confidence_line(calibrated: Any) -> str:
    """The report's calibration in one line: ECE before and after, what the '?' threshold does."""
    before, after, point = calibrated.before, calibrated.after, calibrated.at_threshold
    if after is None or point is None:
        return f"Calibration: ECE {before.ece:.2%} at temperature 1; none fitted ({calibrated.fitted_on})"
    refused = (
        "" if point.refused is None else f", refuses {percent(point.refused)} of {calibrated.non_letters} non-letters"
    )
    return (
        f"Calibration: ECE {before.ece:.2%} -> {after.ece:.2%} at temperature {after.temperature:.3f}; "
        f"'?' below {calibrated.threshold:.4f} answers {percent(point.answered)} of the test letters "
        f"({percent(point.accuracy)} right){refused}"
    )


def print_bench(console: Console, result: BenchResult) -> None:
    """One table per thread count, then where the accuracy came from, the cold start and the notes."""
    for count in dict.fromkeys(row.threads for row in result.rows):
        console.print(bench_table(result, count))
    if result.validation:
        say(console, f"Accuracy on: {result.validation}")
    if result.cold_start is not None:
        start = result.cold_start
        say(console, f"Cold start of `letters recognize one.png`: {start.wall_s:.2f} s wall (median of "
                     f"{start.runs}), {start.peak_rss_mb:.0f} MB peak RSS")  # fmt: skip
    for note in result.notes:
        say(console, f"Note: {note}")
