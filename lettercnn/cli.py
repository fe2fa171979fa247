"""The ``letters`` command line: a thin Typer layer over the library.

Each command parses its options (declared with :mod:`lettercnn.options`), calls one
library function and prints the result (the tables and bars are in
:mod:`lettercnn.display`). Every command runs inside the one error boundary,
:func:`lettercnn.boundary.user_errors`: library errors become one ``Error: ...`` line
and exit status 1, Ctrl-C one line and exit status 130. Option defaults are the
library's own values, not restated here.

No torch, matplotlib or scikit-learn is imported at module level: they load inside the
library functions a command calls, so ``letters --help`` and ``letters recognize`` work
without the training extra.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from lettercnn import __version__, bench, camera, display, export, report
from lettercnn.boundary import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    print_error,
    rank_errors,
    terminate_as_interrupt,
    user_errors,
)
from lettercnn.errors import AccuracyDropError, TrainingInterrupted, missing_module
from lettercnn.options import Threads, command_args, given_options, int_list, option
from lettercnn.quantize import MAX_ACCURACY_DROP
from lettercnn.runs import DEFAULT_RUN, default_checkpoint
from lettercnn.runtime import DEFAULT_TOP_K, EVAL_BATCH, FileResult, Recognizer, choose_model
from lettercnn.threads import apply_threads
from lettercnn.training.config import DEFAULT_WEIGHT_DECAY, Device, Optimizer, TrainConfig, resume_config

TRAIN = TrainConfig()
CAMERA = camera.CameraOptions()
WEIGHT_DECAY_DEFAULTS = ", ".join(f"{value:g} for {name}" for name, value in DEFAULT_WEIGHT_DECAY.items())
BATCH_NORM_DEFAULT = "--batch-norm" if TRAIN.batch_norm else "--no-batch-norm"


app = typer.Typer(
    name="letters",
    help="Train a small residual CNN to read English letters, export it to ONNX, run it on the edge.",
    no_args_is_help=True,
    add_completion=False,
)
data_app = typer.Typer(help="Make letter datasets: synthetic letters, EMNIST import.", no_args_is_help=True)
app.add_typer(data_app, name="data")


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


@app.command("train")
def train_command(
    ctx: typer.Context,
    data: Annotated[Optional[Path], option("Image tree: A/..Z/, or train/ and test/.", default="synthetic")] = None,
    per_letter: Annotated[Optional[int], option("Synthetic images per letter.", default=TRAIN.per_letter)] = None,
    epochs: Annotated[Optional[int], option("Passes over the training set.", default=TRAIN.epochs)] = None,
    batch_size: Annotated[Optional[int], option("Images per step.", default=TRAIN.batch_size)] = None,
    lr: Annotated[Optional[float], option("Peak learning rate (OneCycle).", default=TRAIN.lr)] = None,
    optimizer: Annotated[Optional[Optimizer], option("adam (AdamW) or sgd.", default=TRAIN.optimizer)] = None,
    weight_decay: Annotated[Optional[float], option("Weight decay.", default=WEIGHT_DECAY_DEFAULTS)] = None,
    batch_norm: Annotated[
        Optional[bool], option("BatchNorm in every layer.", "--batch-norm/--no-batch-norm", default=BATCH_NORM_DEFAULT)
    ] = None,
    dropout: Annotated[Optional[float], option("Dropout probability.", default=TRAIN.dropout)] = None,
    seed: Annotated[Optional[int], option("Seed of data, weights and shuffling.", default=TRAIN.seed)] = None,
    device: Annotated[Optional[Device], option("auto: CUDA if present.", default=TRAIN.device)] = None,
    workers: Annotated[Optional[int], option("DataLoader worker processes.", default=TRAIN.workers)] = None,
    name: Annotated[Optional[str], option("Run folder name.", default="from the settings, e.g. bn-dropout0")] = None,
    runs_dir: Annotated[Optional[Path], option("Where run folders go.", default=TRAIN.runs_dir)] = None,
    resume: Annotated[Optional[Path], option("Continue a run folder (or its last.pt), same settings.")] = None,
    fonts: Annotated[Optional[Path], option("Folder of extra .ttf/.otf fonts for the synthetic letters.")] = None,
    init: Annotated[
        Optional[Path], option("Start from these weights (a run folder or .pt): fine-tune, fresh optimizer.")
    ] = None,
    negatives: Annotated[
        Optional[float], option("Images of no letter added, a share of the training set.", default=TRAIN.negatives)
    ] = None,
    outlier_weight: Annotated[
        Optional[float],
        option("Weight of the images of no letter in the loss (outlier exposure).", default=TRAIN.outlier_weight),
    ] = None,
    threads: Threads = None,
    nproc: Annotated[
        Optional[int], option("Train in N processes here, through torch's launcher (README: Training at scale).")
    ] = None,
) -> None:
    """Train a LetterCNN and write its run folder (checkpoints, history, metrics, plots).

    Under torchrun each process runs this same command; --nproc starts torchrun's
    launcher on this machine.
    """
    given = given_options(
        data=data, per_letter=per_letter, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
        weight_decay=weight_decay, batch_norm=batch_norm, dropout=dropout, seed=seed, device=device, workers=workers,
        name=name, runs_dir=runs_dir, fonts_dir=fonts, init=init, negatives=negatives,
        outlier_weight=outlier_weight,
    )  # fmt: skip
    console = Console()
    with user_errors(needs_training="letters train"):
        config = TrainConfig(**given) if resume is None else resume_config(resume, **given)
        if nproc is not None:
            from lettercnn.training.launch import launch_run

            status = launch_run(command_args(ctx, ("nproc", "threads")), config, resume, nproc, threads)
            if status:
                raise typer.Exit(status)
            return
        from lettercnn.training import distributed

        world = distributed.world_from_env()
        apply_threads(threads)
        from lettercnn.training.loop import fit

        shown_on = console if world.main else Console(quiet=True)
        with rank_errors(world), display.TrainDisplay(shown_on) as shown:
            result = fit(config, resume=resume, callbacks=shown.callbacks)
            distributed.leave()
    if world.main:
        display.print_run(console, result)


@app.command("eval")
def eval_command(
    data: Annotated[Path, typer.Option(help="Image tree: scores its test/ folder, the training test split, or all.")],
    checkpoint: Annotated[
        Optional[Path],
        typer.Argument(
            help=escape(f"A .pt checkpoint, or a run folder (its best.pt) [default: {DEFAULT_RUN}]."),
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = EVAL_BATCH,
    device: Annotated[Device, typer.Option(help="auto (CUDA if present), cpu or cuda.")] = TRAIN.device,
    threads: Threads = None,
) -> None:
    """Score a checkpoint on labelled letter images: accuracy, per-letter accuracy, confusions."""
    with user_errors(needs_training="letters eval"):
        apply_threads(threads)
        from lettercnn.training.evaluate import evaluate_checkpoint

        file = default_checkpoint(checkpoint)
        result = evaluate_checkpoint(file, data, batch_size=batch_size, device=device)
    if as_json:
        typer.echo(json.dumps({"checkpoint": str(file), "data": str(data), **result.to_dict()}))
    else:
        display.print_evaluation(Console(), result)


@app.command("average")
def average_command(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (their best.pt) or .pt files, two or more.")],
    name: Annotated[str, typer.Option(help="The new run folder's name.")] = "average",
    runs_dir: Annotated[Path, typer.Option(help="Where run folders go.")] = Path(TRAIN.runs_dir),
    device: Annotated[Device, typer.Option(help="auto (CUDA if present), cpu or cuda.")] = TRAIN.device,
    threads: Threads = None,
) -> None:
    """Average the weights of runs fine-tuned from one start (a model soup) into a new run, scored beside them."""
    console = Console()
    with user_errors(needs_training="letters average"), display.progress_bar(console, "rendering the splits") as bar:
        apply_threads(threads)
        from lettercnn.training.average import average_runs

        result = average_runs(runs, runs_dir, name, device=device, progress=bar)
    display.print_average(console, result)


@app.command("experiments")
def experiments_command(
    data: Annotated[Optional[Path], option("Image tree: A/..Z/, or train/ and test/.", default="synthetic")] = None,
    epochs: Annotated[Optional[int], option("Passes over the training set, per run.", default=TRAIN.epochs)] = None,
    per_letter: Annotated[Optional[int], option("Synthetic images per letter.", default=TRAIN.per_letter)] = None,
    seed: Annotated[Optional[int], option("Seed of data, weights and shuffling.", default=TRAIN.seed)] = None,
    device: Annotated[Optional[Device], option("auto: CUDA if present.", default=TRAIN.device)] = None,
    out: Annotated[
        Optional[Path],
        option("Experiments folder to create (never overwritten: -2, -3...).", default=f"{TRAIN.runs_dir}/experiments"),
    ] = None,
    resume: Annotated[Optional[Path], option("Finish a stopped experiments folder.")] = None,
    threads: Threads = None,
) -> None:
    """Train (a) no BatchNorm, (b) BatchNorm, (c) BatchNorm + dropout 0.3, and compare them."""
    console = Console()
    with user_errors(needs_training="letters experiments"), display.TrainDisplay(console) as shown:
        apply_threads(threads)
        from lettercnn.experiments import run_experiments

        base = TrainConfig(**given_options(data=data, epochs=epochs, per_letter=per_letter, seed=seed, device=device))
        try:
            with terminate_as_interrupt():
                comparison = run_experiments(base, out=out, resume=resume, callbacks=shown.callbacks_of_variant)
        except TrainingInterrupted as stop:
            typer.echo(f"Interrupted: finished runs and {stop.run_dir.name}/last.pt are kept; continue with: "
                       f"letters experiments --resume {stop.run_dir.parent}", err=True)  # fmt: skip
            raise typer.Exit(EXIT_INTERRUPTED) from None
    console.print(display.comparison_table(comparison.rows))
    display.say(console, f"Experiments folder: {comparison.out_dir} ({', '.join(p.name for p in comparison.files)})")


@data_app.command("synth")
def data_synth_command(
    out: Annotated[Path, typer.Argument(help="Folder to create: OUT/A/*.png ... OUT/Z/*.png.", show_default=False)],
    per_letter: Annotated[int, typer.Option(help="Images per letter.", show_default=False)],
    seed: Annotated[int, typer.Option(help="Seed of the letters.")] = TRAIN.seed,
    fonts: Annotated[Optional[Path], typer.Option(help="Folder of extra .ttf/.otf fonts.", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it already holds an image tree.")] = False,
) -> None:
    """Write synthetic letters (fonts drawn like handwriting and photos) as an image tree."""
    console = Console()
    with user_errors(needs_training="letters data synth"), display.progress_bar(console, "rendering letters") as bar:
        from lettercnn.data import write_synthetic

        counts = write_synthetic(out, per_letter, seed=seed, fonts_dir=fonts, overwrite=overwrite, progress=bar)
    display.say(console, f"Wrote {sum(counts.values())} images of {len(counts)} letters to {out}")


@data_app.command("emnist")
def data_emnist_command(
    src: Annotated[Path, typer.Argument(help="Folder with the four emnist-letters-*-ubyte.gz files.")],
    out: Annotated[Path, typer.Argument(help="Folder to create: OUT/train/A/*.png ... OUT/test/Z/*.png.")],
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it already holds an image tree.")] = False,
) -> None:
    """Convert EMNIST Letters into an image tree with train/ and test/ folders."""
    console = Console()
    with user_errors(), display.progress_bar(console, "writing images") as bar:
        from lettercnn.data.emnist import import_emnist  # numpy and OpenCV only: no extra needed

        counts = import_emnist(src, out, overwrite=overwrite, progress=bar)
    shown = ", ".join(f"{sum(letters.values())} {split}" for split, letters in counts.items())
    display.say(console, f"Wrote {shown} images to {out}")


@app.command("export")
def export_command(
    out: Annotated[
        Optional[Path], typer.Argument(help=escape("The .onnx file to write [default: RUN/letters.onnx]."))
    ] = None,
    checkpoint: Annotated[
        Optional[Path], option("A run folder (its best.pt) or a .pt checkpoint.", default=DEFAULT_RUN)
    ] = None,
    opset: Annotated[
        int, typer.Option(help=f"ONNX opset (>= {export.MIN_OPSET}; 18 reads in onnxruntime >= 1.14).")
    ] = export.DEFAULT_OPSET,
    parity_samples: Annotated[
        int, typer.Option(help="Rendered letters the parity check compares on.")
    ] = export.DEFAULT_PARITY_SAMPLES,
    atol: Annotated[
        float, typer.Option(help="Largest |logit difference| torch vs onnxruntime allowed.")
    ] = export.DEFAULT_ATOL,
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            help="Also write OUT.int8.onnx: static int8 (QDQ), kept only if "
            f"it loses <= {MAX_ACCURACY_DROP:g} points of validation accuracy.",
        ),
    ] = False,
    calib: Annotated[
        Optional[Path], option("Images to calibrate int8 on (a folder).", default="synthetic letters")
    ] = None,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate/--no-calibrate",
            help="Fit the temperature and the '?' threshold on the run's validation split.",
        ),
    ] = True,
    min_confidence: Annotated[
        Optional[float],
        typer.Option(min=0.0, max=1.0, help=escape("The '?' threshold to record [default: chosen from data].")),
    ] = None,
    coverage: Annotated[
        float,
        typer.Option(min=0.5, max=1.0, help="The chosen threshold answers this share of validation letters."),
    ] = export.MIN_COVERAGE,
    threads: Threads = None,
) -> None:
    """Export a trained model to ONNX: plain Conv graph, metadata, checker, parity, calibration."""
    console = Console()
    with (
        user_errors(needs_training="letters export"),
        console.status("exporting (reference, export, checker, parity, calibration) ..."),
    ):
        if calib is not None and not int8:
            raise ValueError("--calib calibrates the int8 model; add --int8")
        apply_threads(threads)
        file = default_checkpoint(checkpoint)
        target = out if out is not None else (file if file.is_dir() else file.parent) / "letters.onnx"
        if min_confidence is not None and not calibrate:
            raise ValueError("--min-confidence is recorded with the calibration; drop --no-calibrate")
        exported = export.export_onnx(
            file, target, opset=opset, parity_samples=parity_samples, atol=atol, calibrate=calibrate,
            min_confidence=min_confidence, coverage=coverage,
        )  # fmt: skip
    display.print_export(console, exported)
    if int8:
        _export_int8(console, exported.file, calib)


def _export_int8(console: Console, fp32_file: Path, calib: Path | None) -> None:
    """Quantise the exported model; show fp32 vs int8, or why it was refused (exit 1)."""
    from lettercnn.quantize import quantize_int8

    with user_errors(), console.status("int8: calibration images ...") as status:
        try:
            quantised = quantize_int8(fp32_file, calib=calib, progress=lambda step: status.update(f"int8: {step} ..."))
        except AccuracyDropError as error:
            console.print(display.int8_table(error.report))
            raise
    console.print(display.int8_table(quantised))
    display.say(console, quantised.summary())


@app.command("report")
def report_command(
    checkpoint: Annotated[
        Optional[Path], option("A run folder (its best.pt) or a .pt checkpoint.", default=DEFAULT_RUN)
    ] = None,
    data: Annotated[
        Optional[Path], option("Image tree to take the test images from.", default="the run's test split")
    ] = None,
    out: Annotated[Optional[Path], option("Report folder.", default="RUN/report/")] = None,
    image_index: Annotated[
        Optional[int],
        option("Test image of the feature maps, 0..n-1 of the n test images.", default="the middle one, n // 2"),
    ] = None,
    entropy_index: Annotated[
        Optional[int], option("Test image of the entropy table, 0..n-1.", default="the --image-index one")
    ] = None,
    tsne_samples: Annotated[
        int, typer.Option(min=4, help="Most test images per t-SNE map (t-SNE is slow).")
    ] = report.DEFAULT_TSNE_SAMPLES,
    device: Annotated[Device, typer.Option(help="auto (CUDA if present), cpu or cuda.")] = TRAIN.device,
    threads: Threads = None,
) -> None:
    """Look inside a model: kernels, feature maps, t-SNE, entropy in nats, curves; one offline HTML page."""
    console = Console()
    with user_errors(needs_training="letters report"), display.step_bars(console) as progress:
        apply_threads(threads)
        result = report.build_report(
            default_checkpoint(checkpoint), data=data, out=out, image_index=image_index, entropy_index=entropy_index,
            tsne_samples=tsne_samples, device=device, progress=progress,
        )  # fmt: skip
    display.print_report(console, result)


def _lent_by_training(checkpoint: Path | None, model: Path | None, data: Path | None) -> tuple[Any, Any, list[str]]:
    """The bench's torch rows and the model's own validation split, from the training side; or why not."""
    missing = missing_module()
    if missing is not None:
        return None, None, [f"torch rows: skipped, {missing} is not installed (pip install 'lettercnn[train]')"]
    from lettercnn.runtime import DEFAULT_MODEL
    from lettercnn.training.evaluate import lend_to_bench

    return lend_to_bench(checkpoint, model or DEFAULT_MODEL, data)


@app.command("bench")
def bench_command(
    model: Annotated[Optional[Path], typer.Option(help=escape("An fp32 .onnx [default: the shipped model]."))] = None,
    int8_model: Annotated[Optional[Path], option("Its int8 twin.", "--int8-model", default="MODEL.int8.onnx")] = None,
    checkpoint: Annotated[
        Optional[Path], option("Checkpoint of the same weights, for the torch rows.", default=DEFAULT_RUN)
    ] = None,
    batch: Annotated[
        str, typer.Option(help="Batch sizes: the first is timed for latency, the largest for throughput.")
    ] = ",".join(map(str, bench.DEFAULT_BATCHES)),
    threads: Annotated[str, typer.Option(help="Thread counts, one table each.")] = ",".join(
        map(str, bench.DEFAULT_THREADS)
    ),
    data: Annotated[
        Optional[Path],
        option("Letter folders (A/..Z/) for the accuracy column.", default="the model's validation split, with torch"),
    ] = None,
    cold: Annotated[bool, typer.Option(help="Also time `letters recognize one.png` in a fresh process.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
) -> None:
    """Time every inference path side by side: torch eager (both convolutions), onnxruntime fp32 and int8."""
    console = Console(stderr=as_json)
    with user_errors(), console.status("benchmark ...") as status:
        torch_paths, validation, notes = _lent_by_training(checkpoint, model, data)
        result = bench.run_bench(
            model, int8_model=int8_model, torch_paths=torch_paths, validation=validation, notes=notes,
            batches=int_list(batch, "--batch"), threads=int_list(threads, "--threads"), data=data, cold=cold,
            progress=lambda step: status.update(f"benchmark: {step} ..."),
        )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
    else:
        display.print_bench(console, result)


def _show_file(console: Console, result: FileResult, as_json: bool, save_crops: Path | None) -> bool:
    """Print one file's answer (or its error); write its crops. Returns whether it failed."""
    if save_crops is not None and result.error is None:
        result.save_crops(save_crops)
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
    elif result.error is not None:
        print_error(result.error)
    else:
        display.say(console, display.recognize_line(result))
    return result.error is not None


@app.command("recognize")
def recognize_command(
    paths: Annotated[list[str], typer.Argument(help="Images, folders (searched recursively) or glob patterns.")],
    model: Annotated[
        Optional[Path], typer.Option(help=escape("An .onnx from `letters export` [default: the shipped model]."))
    ] = None,
    top_k: Annotated[
        int, typer.Option(help="Letters listed per answer, best first (>= 1; above 26: all).")
    ] = DEFAULT_TOP_K,
    min_confidence: Annotated[
        Optional[float],
        typer.Option(min=0.0, max=1.0, help=escape("Below this the answer is '?' [default: the model's own].")),
    ] = None,
    word: Annotated[bool, typer.Option("--word", help="Each image is a word: read its letters left to right.")] = False,
    threads: Annotated[
        Optional[int], typer.Option(min=1, help=escape("onnxruntime threads [default: all cores]."))
    ] = None,
    threshold: Annotated[
        str,
        typer.Option(help="How ink is told from paper once the light is flattened: otsu or adaptive (local)."),
    ] = "otsu",
    save_crops: Annotated[
        Optional[Path], typer.Option(help="Write the 32x32 images the model saw to this folder.")
    ] = None,
    assume_letters: Annotated[
        bool, typer.Option("--assume-letters", help="Accept a model without lettercnn metadata as A-Z.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image, one per line.")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="Use the int8 twin of the model (MODEL.int8.onnx).")] = False,
) -> None:
    """Read the letter (or with --word, the letters) in images. No torch needed."""
    from lettercnn.inputs import find_images, unmatched_reason
    from lettercnn.runtime import check_top_k

    console = Console()
    with user_errors():
        check_top_k(top_k)
        recognizer = Recognizer(choose_model(model, int8), threads, assume_letters=assume_letters, threshold=threshold)  # type: ignore[arg-type]
        files, unmatched = find_images(paths)
    for missing in unmatched:
        print_error(unmatched_reason(missing))
    with user_errors():  # a bad file is one line and the batch goes on; a model that fails to run stops it
        results = [recognizer.read_file(file, top_k=top_k, min_confidence=min_confidence, word=word) for file in files]
        failed = [_show_file(console, result, as_json, save_crops) for result in results]
    if recognizer.spent.images and not as_json:
        display.say(console, display.speed_line(recognizer))
    if unmatched or any(failed):
        raise typer.Exit(EXIT_ERROR)


@app.command("camera")
def camera_command(
    source: Annotated[
        str, typer.Option(help="Camera index, video file, image folder, or a GStreamer/V4L2 pipeline.")
    ] = "0",
    model: Annotated[
        Optional[Path], typer.Option(help=escape("An .onnx from `letters export` [default: the shipped model]."))
    ] = None,
    threads: Annotated[
        Optional[int], typer.Option(min=1, help=escape("onnxruntime threads [default: all cores]."))
    ] = None,
    top_k: Annotated[
        int, typer.Option(help="Letters shown per answer, best first (>= 1; above 26: all).")
    ] = CAMERA.top_k,
    min_confidence: Annotated[
        Optional[float],
        typer.Option(min=0.0, max=1.0, help=escape("Below this the answer is '?' [default: the model's own].")),
    ] = None,
    roi: Annotated[
        Optional[str],
        typer.Option(
            help=escape(
                "WxH centred box, auto (follow the largest glyph) or full (the whole frame) "
                "[default: a camera: a centred box half the shorter side; a video or folder: full]."
            )
        ),
    ] = None,
    smooth: Annotated[int, typer.Option(min=1, help="Majority vote over this many frames.")] = CAMERA.smooth,
    max_frames: Annotated[Optional[int], typer.Option(min=1, help="Stop after this many frames.")] = None,
    record: Annotated[
        Optional[Path], typer.Option(help="Write the annotated frames to this video (.mp4 or .avi).")
    ] = None,
    headless: Annotated[
        bool, typer.Option("--headless", help="No window: print one line per change of answer.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Headless output as JSON lines.")] = False,
    snapshots: Annotated[Path, typer.Option(help="Where the s key saves a frame and its crop.")] = Path("."),
    int8: Annotated[bool, typer.Option("--int8", help="Use the int8 twin of the model (MODEL.int8.onnx).")] = False,
) -> None:
    """Read letters live from a webcam, a Pi camera, a video file or an image folder."""

    def print_answer(result: camera.FrameResult, fps: float) -> None:
        line = json.dumps(result.to_dict(fps)) if as_json else display.frame_line(result, fps)
        typer.echo(line)

    with user_errors():
        region = camera.Roi.parse(roi) or camera.default_roi(source)
        options = camera.CameraOptions(top_k, min_confidence, region, smooth, max_frames)
        recognizer = Recognizer(choose_model(model, int8), threads)
        show = not (headless or as_json)
        if show and not (window := camera.gui_available())[0]:
            display.say(
                Console(stderr=True), f"No window: {window[1]}; running headless (use --headless to silence this)."
            )
            show = False
        on_result = (lambda _result, _fps: None) if show else camera.on_change(print_answer)
        camera.run(recognizer, camera.open_source(source), options, on_result=on_result, show=show, record=record,
                   snapshots=snapshots)  # fmt: skip


@app.command("web")
def web_command(
    out: Annotated[Path, typer.Argument(help="The folder to write the site into (created; its files replaced).")],
    model: Annotated[
        Optional[Path], typer.Option(help=escape("An .onnx from `letters export` [default: the shipped model]."))
    ] = None,
    int8: Annotated[bool, typer.Option("--int8", help="Use the int8 twin of the model (MODEL.int8.onnx).")] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="Then serve it on 127.0.0.1 (Python's http.server) until Ctrl-C.")
    ] = False,
    port: Annotated[int, typer.Option(min=0, max=65535, help="The port --serve listens on (0: any free one).")] = 8000,
) -> None:
    """Write a static web page that runs the model in the browser (onnxruntime-web). No torch needed."""
    from lettercnn import web

    console = Console()
    with user_errors(), console.status("writing the site ...") as status:
        site = web.build_site(out, model, int8=int8, progress=lambda step: status.update(f"{step} ..."))
    display.say(console, site.summary())
    if not serve:
        display.say(console, f"Serve it with: letters web {out} --serve  (or any static file server)")
        return
    with user_errors():
        server = web.serve(out, port)
        host, bound = server.server_address[:2]
        display.say(console, f"Serving http://{host}:{bound}/ (self-test: /?selftest=1); Ctrl-C stops.")
        try:
            server.serve_forever()
        finally:
            server.server_close()


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
