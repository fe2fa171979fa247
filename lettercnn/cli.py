"""The ``letters`` command line: a thin Typer layer over the library.

Each command parses its options, calls one library function and prints the result
with Rich. Library errors (``ValueError``, ``OSError``, :class:`TrainingError`) become
``Error: ...`` on stderr and exit status 1 in :func:`user_errors`, the one error
boundary every command goes through; Ctrl-C becomes one line and exit status 130.

Nothing heavy is imported at module level: torch, matplotlib and scikit-learn load
inside the library functions a command calls, so ``letters --help`` is instant and
works without the training extra.
"""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lettercnn import __version__
from lettercnn import report as reporting
from lettercnn import train as training
from lettercnn.train import Device, EvalResult, Optimizer, TrainConfig, TrainingError, TrainingInterrupted

if TYPE_CHECKING:  # pragma: no cover - rich.progress loads only when a bar is shown
    from rich.progress import TaskID

EXIT_ERROR = 1
# What a shell reports for a process stopped by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130
# Errors the library raises for bad input or a bad environment; anything else is a bug
# and keeps its traceback.
USER_ERRORS = (ValueError, OSError, TrainingError)
# Letters listed under "worst" in summaries.
WORST_SHOWN = 5

DEFAULTS = TrainConfig()
WEIGHT_DECAY_DEFAULTS = ", ".join(f"{value:g} for {name}" for name, value in training.DEFAULT_WEIGHT_DECAY.items())
BATCH_NORM_DEFAULT = "--batch-norm" if DEFAULTS.batch_norm else "--no-batch-norm"

app = typer.Typer(
    name="letters",
    help="Train a small residual CNN to read English letters, export it to ONNX, run it on the edge.",
    no_args_is_help=True,
    add_completion=False,
)
data_app = typer.Typer(help="Make letter datasets: synthetic letters, EMNIST import.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """The one error boundary of every command.

    Library errors print ``Error: <message>`` on stderr and exit 1; Ctrl-C prints
    one line and exits 130. Nothing else is caught (``typer.Exit`` passes through).

    Raises:
        typer.Exit: with :data:`EXIT_ERROR` or :data:`EXIT_INTERRUPTED`.
    """
    try:
        yield
    except TrainingInterrupted as stop:
        kept = f"last.pt keeps {stop.epochs_done}/{stop.epochs} finished epochs"
        if not stop.epochs_done:
            kept = "no epoch had finished"
        typer.echo(f"Interrupted: {kept}; continue with: letters train --resume {stop.run_dir}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except USER_ERRORS as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(EXIT_ERROR) from None


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (``kill``, systemd or docker stop) like Ctrl-C while a long command runs.

    Training then stops the way Ctrl-C stops it: the last finished epoch stays in
    ``last.pt`` and one line says how to resume, instead of a silent death.
    """

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _show_version(value: bool) -> None:
    """``--version``: print the version and stop."""
    if value:
        typer.echo(f"letters {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Train a small residual CNN to read English letters, export it to ONNX, run it on the edge."""


def _say(console: Console, text: str) -> None:
    """Print one plain line, unwrapped, so paths stay whole and copyable."""
    console.print(text, highlight=False, soft_wrap=True, markup=False)


def _duration(seconds: float) -> str:
    """42.3 -> '42 s'; 953 -> '15.9 min'."""
    return f"{seconds:.0f} s" if seconds < 100 else f"{seconds / 60:.1f} min"


def _percent(value: float | None) -> str:
    """0.9731 -> '97.3%'; None -> '-'."""
    return "-" if value is None else f"{value:.1%}"


class TrainDisplay:
    """Rich progress for :func:`lettercnn.train.fit`: a bar per epoch, a line as each one ends.

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
        self.callbacks = training.Callbacks(
            on_data_progress=self._data,
            on_start=self._start,
            on_epoch_start=self._epoch_start,
            on_batch=self._batch,
            on_epoch_end=self._epoch_end,
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

    def _new_task(self, description: str, total: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(description, total=total, stats="")

    def _data(self, done: int, total: int) -> None:
        if self.task is None:
            self._new_task("loading letters", total)
        self.progress.update(self.task, completed=done, total=total)

    def _start(self, info: training.RunInfo) -> None:
        sizes = ", ".join(f"{size} {split}" for split, size in info.sizes.items())
        _say(self.console, f"Data: {info.data_source} ({sizes})")
        resumed = f", resuming after epoch {info.start_epoch}/{info.epochs}" if info.start_epoch else ""
        _say(self.console, f"Run: {info.run_dir} on {info.device}{resumed}")

    def _epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        self._new_task(f"epoch {epoch}/{epochs}", batches)
        self.epochs = epochs

    def _batch(self, loss: float, acc: float, images_per_s: float) -> None:
        stats = f"loss {loss:.3f} acc {acc:.1%} {images_per_s:.0f} img/s"
        self.progress.update(self.task, advance=1, stats=stats)  # type: ignore[arg-type]

    def _epoch_end(self, record: training.EpochRecord) -> None:
        width = len(str(self.epochs))
        _say(
            self.console,
            f"epoch {record.epoch:>{width}}/{self.epochs}  loss {record.train_loss:.3f} acc {record.train_acc:.1%}"
            f"  val loss {record.val_loss:.3f} acc {record.val_acc:.1%}  lr {record.lr:.1e}"
            f"  {record.images_per_s:.0f} img/s  {record.seconds:.0f}s",
        )


def _read_as(result: EvalResult, letter: str) -> str:
    """What ``letter`` was most often mistaken for, e.g. 'L (5x)'; '-' if never."""
    confused = result.confused_with(letter)
    return "-" if confused is None else f"{confused[0]} ({confused[1]}x)"


def _worst_table(result: EvalResult, title: str) -> Table:
    """The letters read worst, with what they were mistaken for."""
    table = Table(title=title, title_justify="left")
    table.add_column("Letter")
    table.add_column("Accuracy", justify="right")
    table.add_column("Most often read as")
    for letter, accuracy in result.worst_classes(WORST_SHOWN):
        table.add_row(letter, _percent(accuracy), _read_as(result, letter))
    return table


def _print_run(console: Console, result: training.RunResult) -> None:
    """The summary of a finished run: test scores, worst letters, the run folder."""
    summary = Table(title="Test set", title_justify="left", show_header=False)
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("accuracy", f"{_percent(result.test.accuracy)} of {result.test.count} images")
    summary.add_row("loss", f"{result.test.loss:.4f}")
    summary.add_row("best epoch", f"{result.best_epoch} (val accuracy {_percent(result.best_val_acc)})")
    summary.add_row("time", f"{_duration(result.wall_seconds)} on {result.device}")
    console.print(summary)
    console.print(_worst_table(result.test, "Worst letters"))
    _say(console, f"Run folder: {result.run_dir}")


def _option(help_text: str, *names: str, default: object = None) -> Any:
    """A ``typer.Option`` that is None when not given, with the library's default stated in its help."""
    if default is not None:
        help_text += f" [default: {default}]"
    return typer.Option(*names, help=escape(help_text), show_default=False)  # escape: "[...]" is not markup


@app.command()
def train(
    data: Annotated[Optional[Path], _option("Image tree: A/..Z/, or train/ and test/.", default="synthetic")] = None,
    per_letter: Annotated[Optional[int], _option("Synthetic images per letter.", default=DEFAULTS.per_letter)] = None,
    epochs: Annotated[Optional[int], _option("Passes over the training set.", default=DEFAULTS.epochs)] = None,
    batch_size: Annotated[Optional[int], _option("Images per step.", default=DEFAULTS.batch_size)] = None,
    lr: Annotated[Optional[float], _option("Peak learning rate (OneCycle).", default=DEFAULTS.lr)] = None,
    optimizer: Annotated[Optional[Optimizer], _option("adam (AdamW) or sgd.", default=DEFAULTS.optimizer)] = None,
    weight_decay: Annotated[Optional[float], _option("Weight decay.", default=WEIGHT_DECAY_DEFAULTS)] = None,
    batch_norm: Annotated[
        Optional[bool], _option("BatchNorm in every layer.", "--batch-norm/--no-batch-norm", default=BATCH_NORM_DEFAULT)
    ] = None,
    dropout: Annotated[Optional[float], _option("Dropout probability.", default=DEFAULTS.dropout)] = None,
    seed: Annotated[Optional[int], _option("Seed of data, weights and shuffling.", default=DEFAULTS.seed)] = None,
    device: Annotated[Optional[Device], _option("auto: CUDA if present.", default=DEFAULTS.device)] = None,
    workers: Annotated[Optional[int], _option("DataLoader worker processes.", default=DEFAULTS.workers)] = None,
    name: Annotated[Optional[str], _option("Run folder name.", default="from the settings, e.g. bn-dropout0")] = None,
    runs_dir: Annotated[Optional[Path], _option("Where run folders go.", default=DEFAULTS.runs_dir)] = None,
    resume: Annotated[Optional[Path], _option("Continue a run folder (or its last.pt), same settings.")] = None,
    fonts: Annotated[Optional[Path], _option("Folder of extra .ttf/.otf fonts for the synthetic letters.")] = None,
    negatives: Annotated[
        Optional[float], _option("Images of no letter added, a share of the training set.", default=DEFAULTS.negatives)
    ] = None,
) -> None:
    """Train a LetterCNN and write its run folder (checkpoints, history, metrics, plots)."""
    given: dict[str, Any] = {
        "data": data, "per_letter": per_letter, "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "optimizer": optimizer, "weight_decay": weight_decay, "batch_norm": batch_norm, "dropout": dropout,
        "seed": seed, "device": device, "workers": workers, "name": name, "runs_dir": runs_dir, "fonts_dir": fonts,
        "negatives": negatives,
    }  # fmt: skip
    console = Console()
    with user_errors():
        if resume is None:
            config = TrainConfig(**{key: value for key, value in given.items() if value is not None})
        else:
            config = training.resume_config(resume, **given)
        with TrainDisplay(console) as display, terminate_as_interrupt():
            result = training.fit(config, resume=resume, callbacks=display.callbacks)
    _print_run(console, result)


def _print_evaluation(console: Console, result: EvalResult) -> None:
    """Accuracy, a per-letter table and the most frequent confusions."""
    _say(console, f"Accuracy {_percent(result.accuracy)} on {result.count} images (loss {result.loss:.4f})")
    _say(console, f"Scored: {result.source}")
    table = Table(title="Per letter", title_justify="left")
    table.add_column("Letter")
    table.add_column("Images", justify="right")
    table.add_column("Accuracy", justify="right")
    table.add_column("Most often read as")
    for index, (letter, accuracy) in enumerate(result.per_class.items()):
        table.add_row(letter, str(sum(result.confusion[index])), _percent(accuracy), _read_as(result, letter))
    console.print(table)
    mistakes = result.top_confusions(WORST_SHOWN)
    if mistakes:
        listed = ", ".join(f"{true}->{predicted} {count}x" for true, predicted, count in mistakes)
        _say(console, f"Most frequent confusions (true->predicted): {listed}")


@app.command("eval")
def eval_command(
    checkpoint: Annotated[Path, typer.Argument(help="A .pt checkpoint, or a run folder (its best.pt).")],
    data: Annotated[Path, typer.Option(help="Image tree: scores its test/ folder, the training test split, or all.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = training.EVAL_BATCH_SIZE,
    device: Annotated[Device, typer.Option(help="auto (CUDA if present), cpu or cuda.")] = "auto",
) -> None:
    """Score a checkpoint on labelled letter images: accuracy, per-letter accuracy, confusions."""
    with user_errors():
        result = training.evaluate_checkpoint(checkpoint, data, batch_size=batch_size, device=device)
    if as_json:
        typer.echo(json.dumps({"checkpoint": str(checkpoint), "data": str(data), **result.to_dict()}))
    else:
        _print_evaluation(Console(), result)


def _comparison_table(rows: list[Any]) -> Table:
    """The three-way comparison of ``letters experiments``."""
    table = Table(title="BatchNorm and dropout compared", title_justify="left")
    for header in ("Run", "Test acc", "Test loss", "Best epoch (val)", "Train loss", "Val loss", "Time"):
        table.add_column(header, justify="left" if header == "Run" else "right")
    for row in rows:
        table.add_row(
            f"({row.variant.key}) {row.run_dir.name}", _percent(row.test_accuracy),
            f"{row.test_loss:.4f}", f"{row.best_epoch} ({_percent(row.best_val_acc)})", f"{row.final_train_loss:.4f}",
            f"{row.final_val_loss:.4f}", _duration(row.wall_seconds),
        )  # fmt: skip
    return table


@app.command()
def experiments(
    data: Annotated[Optional[Path], _option("Image tree: A/..Z/, or train/ and test/.", default="synthetic")] = None,
    epochs: Annotated[Optional[int], _option("Passes over the training set, per run.", default=DEFAULTS.epochs)] = None,
    per_letter: Annotated[Optional[int], _option("Synthetic images per letter.", default=DEFAULTS.per_letter)] = None,
    seed: Annotated[Optional[int], _option("Seed of data, weights and shuffling.", default=DEFAULTS.seed)] = None,
    device: Annotated[Optional[Device], _option("auto: CUDA if present.", default=DEFAULTS.device)] = None,
    out: Annotated[Optional[Path], _option("Experiments folder to create (never overwritten: -2, -3...).",
                                           default="runs/experiments")] = None,  # fmt: skip
    resume: Annotated[Optional[Path], _option("Finish a stopped experiments folder.")] = None,
) -> None:
    """Train (a) no BatchNorm, (b) BatchNorm, (c) BatchNorm + dropout 0.3, and compare them."""
    from lettercnn import experiments as study

    given = {"data": data, "epochs": epochs, "per_letter": per_letter, "seed": seed, "device": device}
    console = Console()
    with user_errors(), TrainDisplay(console) as display:
        base = TrainConfig(**{key: value for key, value in given.items() if value is not None})

        def callbacks(variant: Any) -> training.Callbacks:
            display.next_run(f"({variant.key}) {variant.title}")
            return display.callbacks

        try:
            with terminate_as_interrupt():
                comparison = study.run_experiments(base, out=out, resume=resume, callbacks=callbacks)
        except TrainingInterrupted as stop:
            typer.echo(f"Interrupted: finished runs and {stop.run_dir.name}/last.pt are kept; continue with: "
                       f"letters experiments --resume {stop.run_dir.parent}", err=True)  # fmt: skip
            raise typer.Exit(EXIT_INTERRUPTED) from None
    console.print(_comparison_table(comparison.rows))
    _say(console, f"Experiments folder: {comparison.out_dir} ({', '.join(p.name for p in comparison.files)})")


@contextlib.contextmanager
def _step_bars(console: Console) -> Iterator[Callable[[str, int, int], None]]:
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
def _progress_bar(console: Console, description: str) -> Iterator[Callable[[int, int], None]]:
    """A Rich bar, and the ``progress(done, total)`` callback that drives it."""
    with _step_bars(console) as update:
        yield lambda done, total: update(description, done, total)


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Argument(help="Folder to create: OUT/A/*.png ... OUT/Z/*.png.", show_default=False)],
    per_letter: Annotated[int, typer.Option(help="Images per letter.", show_default=False)],
    seed: Annotated[int, typer.Option(help="Seed of the letters.")] = 0,
    fonts: Annotated[Optional[Path], typer.Option(help="Folder of extra .ttf/.otf fonts.", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it already holds an image tree.")] = False,
) -> None:
    """Write synthetic letters (fonts drawn like handwriting and photos) as an image tree."""
    from lettercnn.data import write_synthetic

    console = Console()
    with user_errors(), _progress_bar(console, "rendering letters") as progress:
        counts = write_synthetic(out, per_letter, seed=seed, fonts_dir=fonts, overwrite=overwrite, progress=progress)
    _say(console, f"Wrote {sum(counts.values())} images of {len(counts)} letters to {out}")


@data_app.command("emnist")
def data_emnist(
    src: Annotated[Path, typer.Argument(help="Folder with the four emnist-letters-*-ubyte.gz files.")],
    out: Annotated[Path, typer.Argument(help="Folder to create: OUT/train/A/*.png ... OUT/test/Z/*.png.")],
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it already holds an image tree.")] = False,
) -> None:
    """Convert EMNIST Letters into an image tree with train/ and test/ folders."""
    from lettercnn.data import import_emnist

    console = Console()
    with user_errors(), _progress_bar(console, "writing images") as progress:
        counts = import_emnist(src, out, overwrite=overwrite, progress=progress)
    shown = ", ".join(f"{sum(letters.values())} {split}" for split, letters in counts.items())
    _say(console, f"Wrote {shown} images to {out}")


@app.command("export")
def export_command(
    out: Annotated[Optional[Path], typer.Argument(help=escape("The .onnx file to write [default: RUN/letters.onnx]."))] = None,
    checkpoint: Annotated[Path, typer.Option(help="A run folder (its best.pt) or a .pt checkpoint.")] = Path("runs/bn-dropout0"),
    opset: Annotated[int, typer.Option(help="ONNX opset (>= 17; 18 reads in onnxruntime >= 1.14).")] = 18,
    parity_samples: Annotated[int, typer.Option(help="Rendered letters the parity check compares on.")] = 256,
    atol: Annotated[float, typer.Option(help="Largest |logit difference| torch vs onnxruntime allowed.")] = 1e-4,
    int8: Annotated[bool, typer.Option("--int8", help="Also write OUT.int8.onnx: static int8 (QDQ), kept only if "
                                       "it loses <= 0.5 points of validation accuracy.")] = False,  # fmt: skip
    calib: Annotated[Optional[Path], _option("Images to calibrate int8 on (a folder).", default="synthetic letters")] = None,
) -> None:
    """Export a trained model to ONNX: plain Conv graph, metadata, checker and parity checked."""
    from lettercnn.export import export_onnx

    target = out if out is not None else (checkpoint if checkpoint.is_dir() else checkpoint.parent) / "letters.onnx"
    console = Console()
    with user_errors():
        if calib is not None and not int8:
            raise ValueError("--calib calibrates the int8 model; add --int8")
    with user_errors(), console.status("exporting (reference, export, checker, parity) ..."):
        report = export_onnx(checkpoint, target, opset=opset, parity_samples=parity_samples, atol=atol)
    _say(console, report.summary())
    _say(console, "ops: " + ", ".join(f"{op} {count}" for op, count in sorted(report.op_counts.items())))
    table = Table(title="Parity torch (img2col) vs onnxruntime", title_justify="left")
    for column in ("inputs", "samples", "max |Δlogit|", "top-1 agreement"):
        table.add_column(column, justify="right" if column != "inputs" else "left")
    for parity in report.parity:
        table.add_row(parity.name, str(parity.samples), f"{parity.max_abs_diff:.2e}", _percent(parity.top1_agreement))
    console.print(table)
    if int8:
        _export_int8(console, report.file, calib)


def _export_int8(console: Console, fp32_file: Path, calib: Path | None) -> None:
    """Quantise the exported model; show fp32 vs int8, or why it was refused (exit 1)."""
    from lettercnn.quantize import AccuracyDropError, quantize_int8

    with user_errors():
        status = console.status("int8: calibration images ...")
        with status:
            try:
                report = quantize_int8(fp32_file, calib=calib, progress=lambda step: status.update(f"int8: {step} ..."))
            except AccuracyDropError as error:
                console.print(_int8_table(error.report))
                raise
    console.print(_int8_table(report))
    _say(console, report.summary())


def _int8_table(report: Any) -> Table:
    """fp32 against int8: size and validation accuracy."""
    table = Table(title=f"fp32 vs int8 on {report.val_images} validation images", title_justify="left")
    for column in ("model", "size", "accuracy", "top-1 agreement"):
        table.add_column(column, justify="left" if column == "model" else "right")
    table.add_row("fp32", f"{report.fp32_size / 1e6:.1f} MB", f"{report.fp32_accuracy:.2%}", "")
    table.add_row("int8", f"{report.int8_size / 1e6:.1f} MB", f"{report.int8_accuracy:.2%}", f"{report.agreement:.2%}")
    table.caption = f"validation: {report.validation}; calibration: {report.calibration}"
    return table


def _entropy_table(report: Any) -> Table:
    """The report's entropies, in nats: one image, the test-set means, the reference report."""
    image, test_set, reference = report.entropy_image, report.test_set, reporting.REFERENCE
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


@app.command("report")
def report_command(
    checkpoint: Annotated[Path, typer.Option(help="A run folder (its best.pt) or a .pt checkpoint.", show_default=False)],
    data: Annotated[Optional[Path], _option("Image tree to take the test images from.", default="the run's test split")] = None,
    out: Annotated[Optional[Path], _option("Report folder.", default="RUN/report/")] = None,
    image_index: Annotated[int, typer.Option(min=0, help="Test image of the feature maps (wraps past the end).")] = reporting.DEFAULT_IMAGE_INDEX,
    entropy_index: Annotated[int, typer.Option(min=0, help="Test image of the entropy table (wraps past the end).")] = reporting.DEFAULT_ENTROPY_INDEX,
    tsne_samples: Annotated[int, typer.Option(min=4, help="Most test images per t-SNE map (t-SNE is slow).")] = reporting.DEFAULT_TSNE_SAMPLES,
    device: Annotated[Device, typer.Option(help="auto (CUDA if present), cpu or cuda.")] = "auto",
) -> None:
    """Look inside a model: kernels, feature maps, t-SNE, entropy in nats, curves; one offline HTML page."""
    console = Console()
    with user_errors(), _step_bars(console) as progress:
        report = reporting.build_report(
            checkpoint, data=data, out=out, image_index=image_index, entropy_index=entropy_index,
            tsne_samples=tsne_samples, device=device, progress=progress,
        )  # fmt: skip
    _say(console, f"Test images: {report.data_source}; {_percent(report.accuracy)} of the {report.test_images} read right")
    image = report.entropy_image
    _say(console, f"Image #{image.index}: a {image.true_letter}, recognised as {image.letter} ({_percent(image.confidence)})")
    console.print(_entropy_table(report))
    _say(console, f"Report ({_duration(report.seconds)}): {report.html}")


def _int_list(text: str, option: str) -> list[int]:
    """'1,64' -> [1, 64]; ValueError naming the option otherwise."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{option} takes comma-separated integers such as 1,64; got {text!r}") from None


def _ms(timing: Any) -> str:
    """A bench Timing as 'median / p90' milliseconds."""
    return "-" if timing is None else f"{timing.median:.2f} / {timing.p90:.2f}"


def _bench_table(result: Any, threads: int) -> Table:
    """One thread count's rows: latency, throughput, size, accuracy, speed-up over the first row."""
    from lettercnn import bench
    small, large = result.batches[0], max(result.batches)
    table = Table(title=f"{threads} thread{'s' if threads > 1 else ''}", title_justify="left")
    table.add_column("path")
    table.add_column(f"batch {small} ms", justify="right")
    if large != small:
        table.add_column(f"batch {large} img/s", justify="right")
        table.add_column(f"batch {large} GFLOP/s", justify="right")
    for column in ("size", "accuracy", f"× row 1 (batch {small})"):
        table.add_column(column, justify="right")
    for row in (row for row in result.rows if row.threads == threads):
        cells = [row.path, _ms(row.latency_ms.get(small))]
        if large != small:
            cells += [f"{row.images_per_s(large):,.0f}", f"{row.gflops(large):.1f}"]
        speedup = result.speedup(row, small)
        cells += [f"{row.size_bytes / 1e6:.1f} MB", _percent(row.accuracy), "-" if speedup is None else f"{speedup:.2f}×"]
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


@app.command()
def bench(
    model: Annotated[Optional[Path], typer.Option(help=escape("An fp32 .onnx [default: the shipped model]."))] = None,
    int8_model: Annotated[Optional[Path], _option("Its int8 twin.", "--int8-model", default="MODEL.int8.onnx")] = None,
    checkpoint: Annotated[Optional[Path], _option("Checkpoint of the same weights, for the torch rows.",
                                                  default="models/bn-dropout0 if present")] = None,  # fmt: skip
    batch: Annotated[str, typer.Option(help="Batch sizes: the first is timed for latency, the largest for throughput.")] = "1,64",
    threads: Annotated[str, typer.Option(help="Thread counts, one table each.")] = "1,2",
    data: Annotated[Optional[Path], _option("Letter folders (A/..Z/) for the accuracy column.",
                                            default="the model's validation split, with torch")] = None,  # fmt: skip
    cold: Annotated[bool, typer.Option(help="Also time `letters recognize one.png` in a fresh process.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
) -> None:
    """Time every inference path side by side: torch eager (both convolutions), onnxruntime fp32 and int8."""
    from lettercnn.bench import run_bench

    console = Console(stderr=as_json)
    with user_errors(), console.status("benchmark ...") as status:
        result = run_bench(
            model, int8_model=int8_model, checkpoint=checkpoint, batches=_int_list(batch, "--batch"),
            threads=_int_list(threads, "--threads"), data=data, cold=cold,
            progress=lambda step: status.update(f"benchmark: {step} ..."),
        )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    for count in dict.fromkeys(row.threads for row in result.rows):
        console.print(_bench_table(result, count))
    if result.validation:
        _say(console, f"Accuracy on: {result.validation}")
    if result.cold_start is not None:
        start = result.cold_start
        _say(console, f"Cold start of `letters recognize one.png`: {start.wall_s:.2f} s wall (median of "
                      f"{start.runs}), {start.peak_rss_mb:.0f} MB peak RSS")  # fmt: skip
    for note in result.notes:
        _say(console, f"Note: {note}")


def _save_crops(folder: Path, result: Any) -> None:
    """Write the 32x32 images the model saw, named after the file (and letter index)."""
    from lettercnn.fileio import write_bytes
    from lettercnn.preprocess import encode_png

    for index, glyph in enumerate(result.glyphs):
        suffix = f"_{index}" if len(result.glyphs) > 1 else ""
        name = f"{result.path.stem}{suffix}_{result.predictions[index].letter.replace('?', 'unknown')}.png"
        write_bytes(folder / name, encode_png(glyph))


def _recognize_line(result: Any) -> str:
    """One line per image: path, answer, confidence, alternatives, ms."""
    if len(result.predictions) == 1:
        best = result.predictions[0]
        alternatives = " ".join(f"{letter} {p:.2f}" for letter, p in best.top_k[1:])
        if not best.top_k:
            alternatives = "no letter found: a blank image"
        return f"{result.path}: {best.letter} {best.confidence:.2f}  ({alternatives})  {result.ms:.1f} ms"
    letters = " ".join(f"{p.letter}:{p.confidence:.2f}" for p in result.predictions)
    return f"{result.path}: {result.text or '(no letters)'}  [{letters}]  {result.ms:.1f} ms"


@app.command()
def recognize(
    paths: Annotated[list[str], typer.Argument(help="Images, folders (searched recursively) or glob patterns.")],
    model: Annotated[Optional[Path], typer.Option(help=escape("An .onnx from `letters export` [default: the shipped model]."))] = None,
    top_k: Annotated[int, typer.Option(help="Letters listed per answer, best first (>= 1; above 26: all).")] = 3,
    min_confidence: Annotated[float, typer.Option(min=0.0, max=1.0, help="Below this the answer is '?'.")] = 0.0,
    word: Annotated[bool, typer.Option("--word", help="Each image is a word: read its letters left to right.")] = False,
    threads: Annotated[Optional[int], typer.Option(min=1, help=escape("onnxruntime threads [default: all cores]."))] = None,
    threshold: Annotated[str, typer.Option(help="otsu (clean images) or adaptive (uneven light).")] = "otsu",
    save_crops: Annotated[Optional[Path], typer.Option(help="Write the 32x32 images the model saw to this folder.")] = None,
    assume_letters: Annotated[bool, typer.Option(help="Accept a model without lettercnn metadata as A-Z.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image, one per line.")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="Use the int8 twin of the model (MODEL.int8.onnx).")] = False,
) -> None:
    """Read the letter (or with --word, the letters) in images. No torch needed."""
    from lettercnn.runtime import Recognizer, check_top_k, choose_model, find_images, unmatched_reason

    console = Console()
    with user_errors():
        check_top_k(top_k)
        model = choose_model(model, int8)
        recognizer = Recognizer(model, threads, assume_letters=assume_letters, threshold=threshold)  # type: ignore[arg-type]
        files, unmatched = find_images(paths)
    failures = len(unmatched)
    for missing in unmatched:
        typer.echo(f"Error: {unmatched_reason(missing)}", err=True)
    with user_errors():  # a bad file is one line and the batch goes on; a model that fails to run stops it
        for file in files:
            result = recognizer.read_file(file, top_k=top_k, min_confidence=min_confidence, word=word)
            failures += result.error is not None
            if save_crops is not None and result.error is None:
                _save_crops(save_crops, result)
            if as_json:
                typer.echo(json.dumps(result.to_dict()))
            elif result.error is not None:
                typer.echo(f"Error: {result.error}", err=True)
            else:
                _say(console, _recognize_line(result))
    timing = recognizer.timing
    if timing.images and not as_json:
        per = 1.0 / timing.images
        _say(
            console,
            f"Speed: {timing.preprocess_ms * per:.1f} ms preprocess, {timing.inference_ms * per:.1f} ms inference "
            f"per image ({timing.images} image{'s' if timing.images != 1 else ''}, model {recognizer.path.name})",
        )
    if failures:
        raise typer.Exit(EXIT_ERROR)


@app.command()
def camera(
    source: Annotated[str, typer.Option(help="Camera index, video file, image folder, or a GStreamer/V4L2 pipeline.")] = "0",
    model: Annotated[Optional[Path], typer.Option(help=escape("An .onnx from `letters export` [default: the shipped model]."))] = None,
    threads: Annotated[Optional[int], typer.Option(min=1, help=escape("onnxruntime threads [default: all cores]."))] = None,
    top_k: Annotated[int, typer.Option(help="Letters shown per answer, best first (>= 1; above 26: all).")] = 3,
    min_confidence: Annotated[float, typer.Option(min=0.0, max=1.0, help="Below this the answer is '?'.")] = 0.5,
    roi: Annotated[Optional[str], typer.Option(help=escape("WxH centred box [default: half the shorter side], or auto."))] = None,
    smooth: Annotated[int, typer.Option(min=1, help="Majority vote over this many frames.")] = 5,
    max_frames: Annotated[Optional[int], typer.Option(min=1, help="Stop after this many frames.")] = None,
    record: Annotated[Optional[Path], typer.Option(help="Write the annotated frames to this video (.mp4 or .avi).")] = None,
    headless: Annotated[bool, typer.Option("--headless", help="No window: print one line per change of answer.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Headless output as JSON lines.")] = False,
    snapshots: Annotated[Path, typer.Option(help="Where the s key saves a frame and its crop.")] = Path("."),
    int8: Annotated[bool, typer.Option("--int8", help="Use the int8 twin of the model (MODEL.int8.onnx).")] = False,
) -> None:
    """Read letters live from a webcam, a Pi camera, a video file or an image folder."""
    from lettercnn import camera as cam
    from lettercnn.runtime import Recognizer, choose_model

    console = Console(stderr=True)
    show = not (headless or as_json)
    if show:
        ok, why = cam.gui_available()
        if not ok:
            _say(console, f"No window: {why}; running headless (use --headless to silence this).")
            show = False
    last: dict[str, str] = {"shown": ""}

    def on_result(result: Any, fps: float) -> None:
        if show or result.shown == last["shown"]:
            return
        last["shown"] = result.shown
        best = result.prediction
        if as_json:
            typer.echo(json.dumps({"frame": result.index, "letter": result.shown, "confidence": round(best.confidence, 4),
                                   "top_k": best.to_dict()["top_k"], "fps": round(fps, 1)}))  # fmt: skip
        else:
            typer.echo(f"frame {result.index}: {result.shown} ({best.confidence:.2f}, {fps:.0f} FPS)")

    with user_errors():
        try:
            session = cam.Session(top_k, min_confidence, cam.Roi.parse(roi), smooth, max_frames)
            recognizer = Recognizer(choose_model(model, int8), threads)
            frames = cam.open_source(source)
            cam.run(recognizer, frames, session, on_result=on_result, show=show, record=record, snapshots=snapshots)
        except cam.CameraError as error:
            raise ValueError(str(error)) from None


def run() -> None:
    """The ``letters`` console script: run the app, then exit without tearing the interpreter down.

    Tearing down onnxruntime, OpenCV and a few hundred modules took 40-60 ms of a
    ~450 ms ``letters recognize one.png``; by then everything is written (files
    atomically, output flushed here) and the atexit handlers have run, so the
    process leaves with ``os._exit``. Errors that are bugs keep their traceback.
    """
    import atexit
    import logging
    import os
    import sys

    try:
        app(prog_name="letters")
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else EXIT_ERROR)
        if isinstance(stop.code, str):
            typer.echo(stop.code, err=True)
    logging.shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
