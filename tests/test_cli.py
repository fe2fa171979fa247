"""Tests of the `letters` command line, through Typer's CliRunner and a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner, Result

from lettercnn import __version__
from lettercnn.cli import app
from lettercnn.errors import TrainingInterrupted
from lettercnn.labels import LETTERS
from lettercnn.nn.checkpoint import checkpoint_payload
from lettercnn.nn.model import LetterCNN
from lettercnn.runs import BEST_CHECKPOINT, CONFIG_FILE, METRICS_FILE
from lettercnn.training import loop

runner = CliRunner()
TINY_TRAIN = ["--per-letter", "10", "--epochs", "1", "--batch-size", "32"]


def assert_clean_error(result: Result, code: int, *needles: str) -> None:
    """The command failed with ``code``, said why (on one `Error:` line for 1), with no traceback."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    if code == 1:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in result.output, result.output


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "eval", "data"):
        assert command in result.output


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "Usage" in result.output
    assert "train" in result.output


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"letters {__version__}"


def test_train_writes_run_folder_and_prints_the_summary(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", *TINY_TRAIN, "--runs-dir", str(tmp_path), "--dropout", "0.2"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "bn-dropout0.2"
    assert (run / BEST_CHECKPOINT).is_file()
    assert (run / METRICS_FILE).is_file()
    assert "epoch 1/1" in result.output
    assert "Test set" in result.output and "accuracy" in result.output
    assert "Worst letters" in result.output
    assert f"Run folder: {run}" in result.output


def test_eval_json_prints_one_json_object(letter_tree: Path, untrained_checkpoint: Path) -> None:
    result = runner.invoke(app, ["eval", str(untrained_checkpoint), "--data", str(letter_tree), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert 0.0 <= report["accuracy"] <= 1.0
    assert report["count"] == 3 * len(LETTERS)  # a plain tree: every image is scored
    assert list(report["per_class"]) == list(LETTERS)
    assert len(report["confusion"]) == len(LETTERS)


def test_eval_prints_tables(letter_tree: Path, untrained_checkpoint: Path) -> None:
    result = runner.invoke(app, ["eval", str(untrained_checkpoint), "--data", str(letter_tree)])
    assert result.exit_code == 0, result.output
    assert "Accuracy" in result.output
    assert "Per letter" in result.output
    assert f"all {3 * len(LETTERS)} images in {letter_tree}" in result.output


def test_train_with_missing_data_folder_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "nowhere"), "--runs-dir", str(tmp_path)])
    assert_clean_error(result, 1, "nowhere")


def test_train_with_unknown_optimizer_is_a_usage_error() -> None:
    result = runner.invoke(app, ["train", "--optimizer", "rmsprop"])
    assert_clean_error(result, 2, "rmsprop")


def test_train_with_bad_value_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--dropout", "1.5", "--runs-dir", str(tmp_path)])
    assert_clean_error(result, 1, "dropout")


def test_train_weighs_the_images_of_no_letter_as_given_and_refuses_a_negative_weight(tmp_path: Path) -> None:
    args = ["train", *TINY_TRAIN, "--negatives", "0.2", "--runs-dir", str(tmp_path), "--name", "heavy"]
    result = runner.invoke(app, [*args, "--outlier-weight", "1.5"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "heavy" / CONFIG_FILE).read_text())["outlier_weight"] == 1.5
    assert_clean_error(runner.invoke(app, [*args, "--outlier-weight", "-1"]), 1, "outlier_weight must be >= 0")


def test_eval_with_missing_checkpoint_fails_cleanly(letter_tree: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", str(tmp_path / "missing.pt"), "--data", str(letter_tree)])
    assert_clean_error(result, 1, "missing.pt")


def test_eval_of_a_file_that_is_no_checkpoint_fails_cleanly(letter_tree: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.pt"
    bogus.write_text("not a checkpoint")
    result = runner.invoke(app, ["eval", str(bogus), "--data", str(letter_tree)])
    assert_clean_error(result, 1, "notes.pt")


def test_resume_of_a_missing_run_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "runs" / "gone")])
    assert_clean_error(result, 1, "gone")


def test_train_from_missing_weights_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--init", str(tmp_path / "nowhere.pt"), "--runs-dir", str(tmp_path)])
    assert_clean_error(result, 1, "nowhere.pt")


def test_ctrl_c_during_training_exits_130_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted_fit(*_args: object, **_kwargs: object) -> None:
        raise TrainingInterrupted(tmp_path / "bn-dropout0", 3, 10)

    monkeypatch.setattr(loop, "fit", interrupted_fit)
    result = runner.invoke(app, ["train", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 130
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "last.pt keeps 3/10" in lines[0] and "--resume" in lines[0]


def test_data_synth_writes_an_image_tree(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    result = runner.invoke(app, ["data", "synth", str(out), "--per-letter", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == list(LETTERS)
    assert f"Wrote {2 * len(LETTERS)} images" in result.output


def test_data_synth_refuses_a_full_folder_without_overwrite(letter_tree: Path) -> None:
    result = runner.invoke(app, ["data", "synth", str(letter_tree), "--per-letter", "2"])
    assert_clean_error(result, 1, "not empty")


def test_data_emnist_with_missing_files_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "emnist", str(tmp_path), str(tmp_path / "out")])
    assert_clean_error(result, 1, "emnist")


def test_cli_import_and_help_load_no_training_libraries() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from lettercnn.cli import app\n"
        "for command in (['--help'], ['train', '--help'], ['bench', '--help'], ['report', '--help']):\n"
        "    assert CliRunner().invoke(app, command).exit_code == 0, command\n"
        "heavy = ('torch', 'matplotlib', 'sklearn', 'torchvision', 'onnx', 'onnxruntime')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def draw_letter(path: Path, text: str, *, ink: int = 25, paper: int = 225) -> Path:
    """A clear printed letter, as a phone scan of a sheet would give."""
    import cv2
    import numpy as np

    image = np.full((200, 180), paper, np.uint8)
    cv2.putText(image, text, (30, 150), cv2.FONT_HERSHEY_SIMPLEX, 4.5, ink, 10, cv2.LINE_AA)
    cv2.imwrite(str(path), image)
    return path


@pytest.fixture()
def letter_files(tmp_path: Path) -> Path:
    folder = tmp_path / "scans"
    (folder / "nested").mkdir(parents=True)
    draw_letter(folder / "R.png", "R")
    draw_letter(folder / "nested" / "k.png", "k", ink=230, paper=20)  # light on dark
    return folder


def test_recognize_reads_the_shipped_models_letters_in_a_folder(letter_files: Path) -> None:
    result = runner.invoke(app, ["recognize", str(letter_files)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"{letter_files / 'R.png'}: R ")
    assert lines[1].startswith(f"{letter_files / 'nested' / 'k.png'}: K ")
    assert lines[-1].startswith("Speed: ") and "2 images" in lines[-1]


def test_recognize_json_gives_one_object_per_image_with_top_k(letter_files: Path) -> None:
    result = runner.invoke(app, ["recognize", str(letter_files / "*.png"), "--json", "--top-k", "5"])
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [o["letter"] for o in objects] == ["R"]
    assert len(objects[0]["top_k"]) == 5 and objects[0]["top_k"][0]["letter"] == "R"


def test_recognize_goes_on_past_bad_files_and_exits_1(letter_files: Path, tmp_path: Path) -> None:
    (letter_files / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = runner.invoke(app, ["recognize", str(letter_files), str(tmp_path / "missing.png")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "R.png: R " in result.stdout and "k.png: K " in result.stdout
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("Error: ") for line in errors)
    assert any("broken.png" in line for line in errors) and any("missing.png" in line for line in errors)


def test_recognize_below_min_confidence_answers_question_mark(tmp_path: Path) -> None:
    # A bare bar is a capital I and a lower-case l alike, so no model is sure of it (a clear
    # R can reach a probability of exactly 1.0 in float32, which no threshold is above);
    # I and L are a look-alike pair, answered while the two together reach the threshold.
    bar = str(draw_letter(tmp_path / "bar.png", "l"))
    answered = runner.invoke(app, ["recognize", bar, "--min-confidence", "0", "--json"])
    assert answered.exit_code == 0, answered.output
    sure = json.loads(answered.stdout)
    assert sure["letter"] in ("I", "L") and sure["confidence"] < 1.0
    (first, p_first), (second, p_second) = ((k["letter"], k["p"]) for k in sure["top_k"][:2])
    assert {first, second} == {"I", "L"} and p_first + p_second < 1.0
    # Above the letter alone it is still answered; above the pair together it is "?".
    for value, expected in ((p_first + 1e-3, sure["letter"]), (p_first + p_second + 1e-3, "?")):
        threshold = f"{min(1.0, value):.6f}"
        again = runner.invoke(app, ["recognize", bar, "--min-confidence", threshold, "--json"])
        assert again.exit_code == 0, again.output
        read = json.loads(again.stdout)
        assert read["letter"] == expected and read["confidence"] == sure["confidence"]
        assert [k["letter"] for k in read["top_k"]] == [k["letter"] for k in sure["top_k"]]


def test_recognize_saves_the_crops_the_model_saw(letter_files: Path, tmp_path: Path) -> None:
    import cv2

    crops = tmp_path / "crops"
    result = runner.invoke(app, ["recognize", str(letter_files / "R.png"), "--save-crops", str(crops)])
    assert result.exit_code == 0, result.output
    saved = cv2.imread(str(crops / "R_R.png"), cv2.IMREAD_UNCHANGED)
    assert saved.shape == (32, 32) and saved.max() == 255 and saved[0].max() == 0


@pytest.mark.parametrize(
    "args, needle",
    [(["--model", "MISSING"], "model not found"), (["--model", "NOTONNX"], "not a model onnxruntime can load"),
     (["--threshold", "magic"], "unknown threshold")],
)  # fmt: skip
def test_recognize_with_a_bad_model_or_option_fails_cleanly(letter_files: Path, tmp_path: Path, args, needle) -> None:
    (tmp_path / "NOTONNX").write_text("hello")
    args = [str(tmp_path / a) if a in ("MISSING", "NOTONNX") else a for a in args]
    result = runner.invoke(app, ["recognize", str(letter_files / "R.png"), *args])
    assert_clean_error(result, 1, needle)


def test_export_writes_a_model_that_recognize_reads(untrained_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    result = runner.invoke(
        app, ["export", str(out), "--checkpoint", str(untrained_checkpoint), "--parity-samples", "64"]
    )
    assert result.exit_code == 0, result.output
    assert "Conv 5" in result.stdout and "batch 64" in result.stdout
    read = runner.invoke(app, ["recognize", str(draw_letter(tmp_path / "a.png", "A")), "--model", str(out), "--json"])
    assert read.exit_code == 0, read.output
    assert json.loads(read.stdout)["letter"] in LETTERS


def test_export_of_a_missing_checkpoint_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path / "m.onnx"), "--checkpoint", str(tmp_path / "nope")])
    assert_clean_error(result, 1, "nope")


def test_recognize_in_a_subprocess_never_loads_torch(letter_files: Path) -> None:
    code = (
        "import sys\n"
        "from lettercnn.cli import app\n"
        f"try:\n    app(['recognize', {str(letter_files / 'R.png')!r}])\n"
        "except SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "print('LOADED', ','.join(m for m in ('torch', 'matplotlib', 'sklearn', 'onnx') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ": R " in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "LOADED"


# --- Bad input (issue 7): one `Error:` line naming the file and the reason, the batch goes on.


def write_bad_file(folder: Path, kind: str) -> Path:
    """A file that is no readable image: empty, truncated PNG/JPEG, or text named .png."""
    import cv2
    import numpy as np

    image = np.full((120, 100), 230, np.uint8)
    cv2.putText(image, "Q", (10, 100), cv2.FONT_HERSHEY_SIMPLEX, 3, 20, 8)
    if kind == "empty.png":
        data = b""
    elif kind == "text.png":
        data = b"just some notes, not an image\n"
    else:
        encoded = cv2.imencode(Path(kind).suffix, image)[1].tobytes()
        data = encoded[: len(encoded) // 2]
    path = folder / kind
    path.write_bytes(data)
    return path


BAD_FILES = {
    "empty.png": "the file is empty",
    "truncated.png": "not an image OpenCV can decode (or truncated)",
    "truncated.jpg": "not an image OpenCV can decode (or truncated)",
    "text.png": "not an image OpenCV can decode (or truncated)",
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_recognize_names_an_unreadable_file_and_reads_the_others(letter_files: Path, kind: str) -> None:
    bad = write_bad_file(letter_files, kind)
    result = runner.invoke(app, ["recognize", str(bad), str(letter_files / "R.png")])
    assert_clean_error(result, 1, f"Error: cannot read {bad}: {BAD_FILES[kind]}")
    assert f"{letter_files / 'R.png'}: R " in result.stdout


def test_recognize_of_bad_files_in_a_subprocess_prints_only_our_error_lines(letter_files: Path) -> None:
    """OpenCV's own decoder warnings (libpng on a truncated file) go to the real stderr."""
    bad = [write_bad_file(letter_files, kind) for kind in BAD_FILES]
    code = "from lettercnn.cli import app; app(prog_name='letters')"
    args = [sys.executable, "-c", code, "recognize", *map(str, bad), str(letter_files / "R.png")]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert ": R " in result.stdout
    assert sorted(result.stderr.strip().splitlines()) == sorted(
        f"Error: cannot read {path}: {BAD_FILES[path.name]}" for path in bad
    )


def test_recognize_reads_16_bit_and_transparent_images(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    ink = cv2.imread(str(draw_letter(tmp_path / "ink.png", "R")), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(tmp_path / "deep.png"), ink.astype(np.uint16) * 257)
    layer = np.zeros((*ink.shape, 4), np.uint8)  # black ink on a fully transparent background
    layer[:, :, 3] = 255 - ink
    cv2.imwrite(str(tmp_path / "layer.png"), layer)
    result = runner.invoke(app, ["recognize", str(tmp_path / "deep.png"), str(tmp_path / "layer.png"), "--json"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["letter"] for line in result.stdout.splitlines()] == ["R", "R"]


def test_recognize_answers_a_blank_image_with_a_question_mark(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    blanks = {"white.png": np.full((80, 80), 255, np.uint8), "black.png": np.zeros((80, 80), np.uint8),
              "dot.png": np.full((1, 1), 128, np.uint8)}  # fmt: skip
    for name, image in blanks.items():
        cv2.imwrite(str(tmp_path / name), image)
    result = runner.invoke(app, ["recognize", *(str(tmp_path / name) for name in blanks)])
    assert result.exit_code == 0, result.output
    for name in blanks:
        assert f"{tmp_path / name}: ? 0.00  (no letter found: a blank image)" in result.stdout
    as_json = runner.invoke(app, ["recognize", str(tmp_path / "white.png"), "--json"])
    assert json.loads(as_json.stdout) | {"ms": 0} == {
        "path": str(tmp_path / "white.png"), "letter": "?", "confidence": 0.0, "top_k": [], "ms": 0,
        "reason": "no glyph found",
    }  # fmt: skip


def test_recognize_reads_a_10000_pixel_square_image(tmp_path: Path) -> None:
    import time

    import cv2
    import numpy as np

    huge = np.full((10_000, 10_000), 230, np.uint8)  # a flat page compresses to ~160 kB
    cv2.putText(huge, "M", (3000, 7000), cv2.FONT_HERSHEY_SIMPLEX, 100, 0, 300)
    cv2.imwrite(str(tmp_path / "huge.png"), huge)
    del huge
    started = time.perf_counter()
    result = runner.invoke(app, ["recognize", str(tmp_path / "huge.png")])
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'huge.png'}: M " in result.stdout
    assert time.perf_counter() - started < 10  # ~0.7 s on 2 cores, 0.6 s of it decoding the PNG


def test_recognize_names_a_folder_without_images_and_an_empty_glob(tmp_path: Path, letter_files: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    result = runner.invoke(app, ["recognize", str(tmp_path / "empty"), str(tmp_path / "*.jpg"), str(letter_files)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {tmp_path / 'empty'}: no image files in this folder (searched recursively for .png, .jpg, "
        ".jpeg, .bmp, .tif, .tiff, .webp, .pgm, .ppm, .pbm, .pnm)",
        f"Error: {tmp_path / '*.jpg'}: the pattern matches no file",
    ]
    assert "R.png: R " in result.stdout and "k.png: K " in result.stdout


def test_top_k_zero_is_one_error_line_and_above_26_lists_every_letter(letter_files: Path) -> None:
    image = str(letter_files / "R.png")
    for command in (["recognize", image], ["camera", "--source", str(letter_files), "--headless"]):
        result = runner.invoke(app, [*command, "--top-k", "0"])
        assert_clean_error(result, 1, "--top-k must be at least 1 (the answer itself is the first), got 0")
    result = runner.invoke(app, ["recognize", image, "--top-k", "99", "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(entry["letter"] for entry in json.loads(result.stdout)["top_k"]) == list(LETTERS)


def foreign_onnx(path: Path, input_shape: list, output_shape: list) -> Path:
    """An ONNX model from elsewhere: no lettercnn metadata, its own input and output shapes."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    size = int(np.prod(input_shape[1:]))
    weights = helper.make_tensor("w", TensorProto.FLOAT, [size, output_shape[-1]], np.zeros(size * output_shape[-1]))
    flat = helper.make_tensor("flat_shape", TensorProto.INT64, [2], [0, -1])
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["image", "flat_shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["scores"]),
        ],
        "foreign",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, output_shape)],
        initializer=[weights, flat],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime we support
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(
    "model, extra, needle",
    [("empty.onnx", [], "is not a model onnxruntime can load: the file is empty"),
     ("truncated.onnx", [], "is not a model onnxruntime can load (not ONNX, or truncated): Protobuf parsing failed"),
     ("foreign.onnx", [], "has no lettercnn metadata (labels, input missing); export it with `letters export`"),
     ("foreign.onnx", ["--assume-letters"],
      "takes input 'image' of shape ['N', 3, 64, 64]; lettercnn feeds (N, 1, 32, 32) images"),
     ("ten_classes.onnx", ["--assume-letters"], "gives 10 scores but its metadata lists 26 labels")],
)  # fmt: skip
def test_recognize_with_a_broken_or_foreign_model_fails_cleanly(
    letter_files: Path, tmp_path: Path, model: str, extra: list[str], needle: str
) -> None:
    from lettercnn.runtime import DEFAULT_MODEL

    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "truncated.onnx").write_bytes(DEFAULT_MODEL.read_bytes()[:5000])
    foreign_onnx(tmp_path / "foreign.onnx", ["N", 3, 64, 64], ["N", 26])
    foreign_onnx(tmp_path / "ten_classes.onnx", ["N", 1, 32, 32], ["N", 10])
    result = runner.invoke(app, ["recognize", str(letter_files / "R.png"), "--model", str(tmp_path / model), *extra])
    assert_clean_error(result, 1, f"Error: {tmp_path / model} ", needle)


def test_a_foreign_model_of_our_shape_runs_with_assume_letters(letter_files: Path, tmp_path: Path) -> None:
    model = foreign_onnx(tmp_path / "plain.onnx", [1, 1, 32, 32], [1, 26])  # fixed batch 1 too
    result = runner.invoke(app, ["recognize", str(letter_files), "--model", str(model), "--assume-letters", "--json"])
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == 2  # all scores 0: every letter ties at 1/26
    assert all(a["letter"] in LETTERS and a["confidence"] == round(1 / len(LETTERS), 6) for a in answers)


@pytest.mark.parametrize("command", ["train", "eval"])
@pytest.mark.parametrize(
    "folders, needle",
    [([], "Couldn't find any letter folder in"), (["A", "cats"], "unknown class folders in"),
     (["photos"], "unknown class folders in")],
    ids=["no-folders", "unknown-name", "no-letter-folder"],
)  # fmt: skip
def test_a_data_root_without_letter_folders_is_one_error_line(
    tmp_path: Path, untrained_checkpoint: Path, command: str, folders: list[str], needle: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    for name in folders:
        (root / name).mkdir()
        draw_letter(root / name / "x.png", "A")
    if command == "train":
        args = ["train", "--data", str(root), "--runs-dir", str(tmp_path / "runs")]
    else:
        args = ["eval", str(untrained_checkpoint), "--data", str(root)]
    result = runner.invoke(app, args)
    assert_clean_error(result, 1, needle, str(root))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def other_checkpoints(folder: Path) -> dict[str, Path]:
    """Checkpoints a user may hand over by mistake: truncated, a picture, another architecture."""
    from lettercnn.nn.model import ModelConfig

    folder.mkdir(exist_ok=True)
    whole = folder / "whole.pt"
    torch.save(checkpoint_payload(LetterCNN(batch_norm=False)), whole)
    (folder / "truncated.pt").write_bytes(whole.read_bytes()[:3000])
    draw_letter(folder / "picture.png", "A").rename(folder / "picture.pt")
    mismatched = checkpoint_payload(LetterCNN(batch_norm=False))
    mismatched["model_config"] = vars(ModelConfig(batch_norm=True)) | {"conv": "img2col"}
    torch.save(mismatched, folder / "other_arch.pt")
    foreign = {"model_config": {"num_classes": 26}, "state_dict": {"resnet.fc.weight": torch.zeros(2)}}
    torch.save(foreign, folder / "resnet.pt")
    return {name: folder / f"{name}.pt" for name in ("truncated", "picture", "other_arch", "resnet")}


@pytest.mark.parametrize(
    "name, needle",
    [("truncated", "is not a readable checkpoint: not a torch.save archive"),
     ("picture", "is not a readable checkpoint: not a torch.save archive"),
     ("other_arch", "holds the weights of another architecture, not of the LetterCNN its model_config describes "
                    "(batch_norm=True, 26 classes): 30 missing (block1.bn.weight"),
     ("resnet", "44 missing (block1.conv.weight, block1.conv.bias, block1.bn.weight, ... 41 more); "
                "1 unexpected (resnet.fc.weight)")],
)  # fmt: skip
def test_eval_of_a_broken_or_foreign_checkpoint_is_one_error_line(
    letter_tree: Path, tmp_path: Path, name: str, needle: str
) -> None:
    checkpoint = other_checkpoints(tmp_path / "ckpts")[name]
    result = runner.invoke(app, ["eval", str(checkpoint), "--data", str(letter_tree)])
    assert_clean_error(result, 1, f"Error: {checkpoint} ", needle)


@pytest.mark.parametrize(
    "name, needle",
    [("truncated", "not a torch.save archive"), ("picture", "not a torch.save archive"),
     ("other_arch", "holds the weights of another architecture, not of the LetterCNN its model_config describes")],
)  # fmt: skip
def test_export_of_a_broken_or_foreign_checkpoint_is_one_error_line(tmp_path: Path, name: str, needle: str) -> None:
    checkpoint = other_checkpoints(tmp_path / "ckpts")[name]
    result = runner.invoke(app, ["export", str(tmp_path / "m.onnx"), "--checkpoint", str(checkpoint)])
    assert_clean_error(result, 1, f"Error: {checkpoint} ", needle)
    assert not (tmp_path / "m.onnx").exists()


def test_nan_loss_in_training_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.nn.functional as F

    real_cross_entropy = F.cross_entropy
    monkeypatch.setattr(F, "cross_entropy", lambda *a, **k: real_cross_entropy(*a, **k) * float("inf"))
    result = runner.invoke(app, ["train", *TINY_TRAIN, "--runs-dir", str(tmp_path), "--name", "nan"])
    assert_clean_error(
        result, 1, f"Error: loss became inf at epoch 1, batch 1; training stopped in {tmp_path / 'nan'}. "
        "no epoch had finished, so there is no best.pt. Try a lower learning rate (lr was 0.002)"
    )  # fmt: skip


def test_sigterm_stops_a_long_command_like_ctrl_c() -> None:
    import os
    import signal

    from lettercnn.cli import terminate_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)  # Python runs the handler before the next line
    assert signal.getsignal(signal.SIGTERM) is before


def test_help_shows_defaults_written_in_brackets() -> None:
    result = runner.invoke(app, ["recognize", "--help"], env={"COLUMNS": "200"})
    assert "[default: the shipped model]" in result.output and "[default: all cores]" in result.output


# --- The runtime-only install (README's first Quickstart command): no torch. --------------

HIDE_TORCH = (
    "import sys\n"
    "sys.modules['torch'] = None  # what an install without the train extra looks like to Python\n"
    "from lettercnn.cli import run\n"
    "sys.argv = ['letters', *sys.argv[1:]]\n"
    "run()\n"
)
TORCH_COMMANDS = {
    "train": ["train", "--runs-dir", "runs"],
    "average": ["average", "a.pt", "b.pt", "--runs-dir", "runs"],
    "eval": ["eval", "model.pt", "--data", "letters"],
    "export": ["export", "m.onnx", "--checkpoint", "model.pt"],
    "report": ["report", "--checkpoint", "model.pt"],
    "experiments": ["experiments", "--out", "experiments"],
    "data synth": ["data", "synth", "synth", "--per-letter", "2"],
}


@pytest.mark.parametrize("command", list(TORCH_COMMANDS))
def test_without_torch_every_training_command_is_one_error_line_naming_the_fix(tmp_path: Path, command: str) -> None:
    args = TORCH_COMMANDS[command]
    result = subprocess.run([sys.executable, "-c", HIDE_TORCH, *args], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"Error: letters {command} needs the train extra, and torch is not installed; "
        "install it with: pip install 'lettercnn[train]'"
    ]
    assert list(tmp_path.iterdir()) == []  # nothing written: no run folder, no experiments config.json


def test_without_torch_recognize_and_bench_still_run(letter_files: Path) -> None:
    recognize = subprocess.run(
        [sys.executable, "-c", HIDE_TORCH, "recognize", str(letter_files / "R.png")], capture_output=True, text=True
    )
    assert recognize.returncode == 0 and ": R " in recognize.stdout, recognize.stderr
    args = ["bench", "--batch", "1", "--threads", "1", "--no-cold", "--json"]
    bench = subprocess.run([sys.executable, "-c", HIDE_TORCH, *args], capture_output=True, text=True)
    assert bench.returncode == 0, bench.stderr
    assert any("torch is not installed" in note for note in json.loads(bench.stdout)["notes"])


@pytest.mark.parametrize(
    "args", [["export"], ["eval", "--data", "letters"], ["report"]], ids=["export", "eval", "report"]
)
def test_a_fresh_checkout_without_runs_gets_a_hint_instead_of_a_missing_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no runs/ here
    result = runner.invoke(app, args)
    assert_clean_error(
        result, 1, "no checkpoint given and no runs/bn-dropout0 (a fresh checkout has no runs/ yet): "
        "train one with `letters train`, or pass --checkpoint models/bn-dropout0, the run of the shipped model"
    )  # fmt: skip


def test_recognize_hints_at_word_mode_for_an_image_of_several_letters(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    image = np.full((140, 900), 235, np.uint8)
    cv2.putText(image, "HELLO WORLD", (20, 100), cv2.FONT_HERSHEY_SIMPLEX, 3, 20, 8, cv2.LINE_AA)
    cv2.imwrite(str(tmp_path / "words.png"), image)
    single = runner.invoke(app, ["recognize", str(tmp_path / "words.png")])
    assert single.exit_code == 0 and "hint: the image holds 10 separate letters" in single.stdout
    assert "use --word" in single.stdout
    word = runner.invoke(app, ["recognize", str(tmp_path / "words.png"), "--word", "--json"])
    assert json.loads(word.stdout)["word"] == "HELLO WORLD" and "hint" not in json.loads(word.stdout)


def test_recognize_gives_no_word_hint_for_a_single_letter(tmp_path: Path) -> None:
    samples = Path(__file__).resolve().parents[1] / "samples" / "letters"
    result = runner.invoke(app, ["recognize", str(samples)])
    assert result.exit_code == 0 and "hint" not in result.stdout


def test_a_pytorch_checkpoint_as_model_says_how_to_export_it(untrained_checkpoint: Path, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes((Path(__file__).resolve().parents[1] / "samples" / "letters" / "A_paper.png").read_bytes())
    result = runner.invoke(app, ["recognize", str(image), "--model", str(untrained_checkpoint)])
    assert result.exit_code == 1
    assert "is a PyTorch checkpoint, not an ONNX model" in result.stderr
    assert (
        f"letters export {untrained_checkpoint.with_suffix('.onnx')} --checkpoint {untrained_checkpoint}"
        in result.stderr
    )


@pytest.mark.parametrize(
    "command",
    [["recognize"], ["camera"], ["train"], ["average"], ["export"], ["eval"], ["report"], ["experiments"], ["bench"],
     ["data", "synth"], ["data", "emnist"]],
)  # fmt: skip
def test_help_fits_80_columns_and_shows_no_type_for_flags(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout and "…" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


# --- A native library that does not load (a Pi without libxcb1, numpy 2 under Debian's OpenCV). ----

UNLOADABLE = (
    "import sys\n"
    "module, library = sys.argv[1], sys.argv[2]\n"
    "class Unloadable:  # what the dynamic loader says when the wheel's system library is missing\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] == module:\n"
    "            raise ImportError(f'{library}: cannot open shared object file: No such file or directory')\n"
    "sys.meta_path.insert(0, Unloadable())\n"
    "sys.argv = ['letters', *sys.argv[3:]]\n"
    "from lettercnn.__main__ import main\n"
    "main()\n"
)
NATIVE_COMMANDS = {
    "recognize": ["recognize", "{letters}"],
    "camera": ["camera", "--source", "{letters}"],
    "train": ["train", "--runs-dir", "runs", "--epochs", "1"],
    "bench": ["bench", "--no-cold"],
    "data synth": ["data", "synth", "synth", "--per-letter", "2"],
}


def run_unloadable(module: str, library: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``letters ARGS`` in a fresh interpreter where importing ``module`` fails for want of ``library``."""
    command = [sys.executable, "-c", UNLOADABLE, module, library, *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("command", list(NATIVE_COMMANDS))
def test_without_a_loadable_opencv_every_command_is_one_error_line_naming_the_library_and_apt(
    letter_files: Path, tmp_path: Path, command: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    args = [arg.format(letters=letter_files) for arg in NATIVE_COMMANDS[command]]
    result = run_unloadable("cv2", "libxcb.so.1", args, work)
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: OpenCV (cv2) cannot load libxcb.so.1, a system library it needs; "), line
    assert "sudo apt install" in line and "libxcb1" in line
    assert result.stdout == "" and list(work.iterdir()) == []  # nothing ran, nothing written


def test_without_a_loadable_opencv_help_and_version_still_work(tmp_path: Path) -> None:
    for args, needle in ((["--help"], "recognize"), (["camera", "--help"], "--source"), (["--version"], __version__)):
        result = run_unloadable("cv2", "libxcb.so.1", args, tmp_path)
        assert result.returncode == 0 and needle in result.stdout, (args, result.stderr)
        assert result.stderr == ""


@pytest.mark.parametrize("command", ["recognize", "camera"])
def test_without_a_loadable_onnxruntime_recognize_and_camera_are_one_error_line(
    letter_files: Path, tmp_path: Path, command: str
) -> None:
    args = [arg.format(letters=letter_files) for arg in NATIVE_COMMANDS[command]]
    result = run_unloadable("onnxruntime", "libgomp.so.1", args, tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        "Error: onnxruntime cannot load libgomp.so.1, a system library it needs; "
        "install it with: sudo apt install libgomp1 (Debian, Ubuntu, Raspberry Pi OS)"
    ]


@pytest.fixture
def torch_threads_restored() -> Iterator[None]:
    """Give torch its thread count back after a command that changes it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("torch_threads_restored")
def test_train_runs_with_the_threads_given(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", *TINY_TRAIN, "--runs-dir", str(tmp_path), "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "on cpu (1 thread)" in result.output
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize(
    "command",
    [["train"], ["average", "a.pt", "b.pt"], ["eval", "--data", "."], ["export"], ["report"], ["experiments"]],
)
def test_every_torch_command_refuses_threads_below_one_in_one_line(command: list[str]) -> None:
    assert_clean_error(runner.invoke(app, [*command, "--threads", "0"]), 1, "--threads must be at least 1, got 0")


@pytest.mark.usefixtures("torch_threads_restored")
def test_training_warns_once_when_an_epoch_slows_far_below_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    speeds = iter([200.0, 50.0, 40.0])
    original = loop._Trainer._train_epoch

    def crowded_out(self: loop._Trainer, epoch: int) -> tuple[float, float, float, float]:
        loss, acc, _speed, lr = original(self, epoch)
        return loss, acc, next(speeds), lr

    monkeypatch.setattr(loop._Trainer, "_train_epoch", crowded_out)
    result = runner.invoke(
        app, ["train", *TINY_TRAIN[:2], "--epochs", "3", "--runs-dir", str(tmp_path), "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("Warning: epoch 2 trained at 50 images/s, 25% of the first") == 1
    assert result.output.count("--threads 1") == 1


def test_train_nproc_hands_every_process_the_options_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lettercnn.training import launch

    launched: list[tuple[list[str], int, int]] = []

    def record(args: list[str], nproc: int, threads: int) -> int:
        launched.append((list(args), nproc, threads))
        return 0

    monkeypatch.setattr(launch, "launch_train", record)
    args = ["train", "--per-letter", "10", "--no-batch-norm", "--runs-dir", str(tmp_path), "--nproc", "2"]
    result = runner.invoke(app, [*args, "--threads", "3"])
    assert result.exit_code == 0, result.output
    assert launched == [(["--per-letter", "10", "--no-batch-norm", "--runs-dir", str(tmp_path)], 2, 3)]


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--nproc", "0"], "--nproc must be at least 1, got 0"),
     (["--nproc", "3"], "--batch-size 64 is the global batch and must split evenly over 3 processes"),
     (["--nproc", "2", "--threads", "0"], "--threads must be at least 1, got 0")],
)  # fmt: skip
def test_train_nproc_checks_what_every_process_would_refuse_in_one_line(args: list[str], needle: str) -> None:
    assert_clean_error(runner.invoke(app, ["train", *args]), 1, needle)
