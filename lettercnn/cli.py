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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from lettercnn import __version__
from lettercnn import train as training
from lettercnn.train import Device, EvalResult, Optimizer, TrainConfig, TrainingError, TrainingInterrupted

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
) -> None:
    """Train a LetterCNN and write its run folder (checkpoints, history, metrics, plots)."""
    given: dict[str, Any] = {
        "data": data, "per_letter": per_letter, "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "optimizer": optimizer, "weight_decay": weight_decay, "batch_norm": batch_norm, "dropout": dropout,
        "seed": seed, "device": device, "workers": workers, "name": name, "runs_dir": runs_dir, "fonts_dir": fonts,
    }  # fmt: skip
    console = Console()
    with user_errors():
        if resume is None:
            config = TrainConfig(**{key: value for key, value in given.items() if value is not None})
        else:
            config = training.resume_config(resume, **given)
        with TrainDisplay(console) as display:
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


@contextlib.contextmanager
def _progress_bar(console: Console, description: str) -> Iterator[Callable[[int, int], None]]:
    """A Rich bar, and the ``progress(done, total)`` callback that drives it."""
    columns = (TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


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
    out: Annotated[Optional[Path], typer.Argument(help="The .onnx file to write [default: RUN/letters.onnx].")] = None,
    checkpoint: Annotated[Path, typer.Option(help="A run folder (its best.pt) or a .pt checkpoint.")] = Path("runs/bn-dropout0"),
    opset: Annotated[int, typer.Option(help="ONNX opset (>= 17; 18 reads in onnxruntime >= 1.14).")] = 18,
    parity_samples: Annotated[int, typer.Option(help="Rendered letters the parity check compares on.")] = 256,
    atol: Annotated[float, typer.Option(help="Largest |logit difference| torch vs onnxruntime allowed.")] = 1e-4,
) -> None:
    """Export a trained model to ONNX: plain Conv graph, metadata, checker and parity checked."""
    from lettercnn.export import export_onnx

    target = out if out is not None else (checkpoint if checkpoint.is_dir() else checkpoint.parent) / "letters.onnx"
    console = Console()
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
        return f"{result.path}: {best.letter} {best.confidence:.2f}  ({alternatives})  {result.ms:.1f} ms"
    letters = " ".join(f"{p.letter}:{p.confidence:.2f}" for p in result.predictions)
    return f"{result.path}: {result.text or '(no letters)'}  [{letters}]  {result.ms:.1f} ms"


@app.command()
def recognize(
    paths: Annotated[list[str], typer.Argument(help="Images, folders (searched recursively) or glob patterns.")],
    model: Annotated[Optional[Path], typer.Option(help="An .onnx from `letters export` [default: the shipped model].")] = None,
    top_k: Annotated[int, typer.Option(min=1, max=26, help="Alternatives listed per letter.")] = 3,
    min_confidence: Annotated[float, typer.Option(min=0.0, max=1.0, help="Below this the answer is '?'.")] = 0.0,
    word: Annotated[bool, typer.Option("--word", help="Each image is a word: read its letters left to right.")] = False,
    threads: Annotated[Optional[int], typer.Option(min=1, help="onnxruntime threads [default: all cores].")] = None,
    threshold: Annotated[str, typer.Option(help="otsu (clean images) or adaptive (uneven light).")] = "otsu",
    save_crops: Annotated[Optional[Path], typer.Option(help="Write the 32x32 images the model saw to this folder.")] = None,
    assume_letters: Annotated[bool, typer.Option(help="Accept a model without lettercnn metadata as A-Z.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image, one per line.")] = False,
) -> None:
    """Read the letter (or with --word, the letters) in images. No torch needed."""
    from lettercnn.runtime import Recognizer, find_images

    console = Console()
    with user_errors():
        recognizer = Recognizer(model, threads, assume_letters=assume_letters, threshold=threshold)  # type: ignore[arg-type]
        files, unmatched = find_images(paths)
    failures = len(unmatched)
    for missing in unmatched:
        typer.echo(f"Error: {missing}: no such file, or no image in it", err=True)
    for file in files:
        result = recognizer.read_file(file, top_k=top_k, min_confidence=min_confidence, word=word)
        failures += result.error is not None
        if save_crops is not None and result.error is None:
            with user_errors():
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
    model: Annotated[Optional[Path], typer.Option(help="An .onnx from `letters export` [default: the shipped model].")] = None,
    threads: Annotated[Optional[int], typer.Option(min=1, help="onnxruntime threads [default: all cores].")] = None,
    top_k: Annotated[int, typer.Option(min=1, max=26, help="Alternatives shown.")] = 3,
    min_confidence: Annotated[float, typer.Option(min=0.0, max=1.0, help="Below this the answer is '?'.")] = 0.5,
    roi: Annotated[Optional[str], typer.Option(help="WxH centred box [default: half the shorter side], or auto.")] = None,
    smooth: Annotated[int, typer.Option(min=1, help="Majority vote over this many frames.")] = 5,
    max_frames: Annotated[Optional[int], typer.Option(min=1, help="Stop after this many frames.")] = None,
    record: Annotated[Optional[Path], typer.Option(help="Write the annotated frames to this video (.mp4 or .avi).")] = None,
    headless: Annotated[bool, typer.Option("--headless", help="No window: print one line per change of answer.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Headless output as JSON lines.")] = False,
    snapshots: Annotated[Path, typer.Option(help="Where the s key saves a frame and its crop.")] = Path("."),
) -> None:
    """Read letters live from a webcam, a Pi camera, a video file or an image folder."""
    from lettercnn import camera as cam
    from lettercnn.runtime import Recognizer

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
            recognizer = Recognizer(model, threads)
            frames = cam.open_source(source)
            cam.run(recognizer, frames, session, on_result=on_result, show=show, record=record, snapshots=snapshots)
        except cam.CameraError as error:
            raise ValueError(str(error)) from None
