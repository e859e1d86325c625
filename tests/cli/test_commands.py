"""visopt filters / classes / saliency / cam on a saved model: what they write, and one-line errors before any work."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import visopt
from visopt.cli import main

from cli_files import image_folder, lambda_model_file, model_file, read_rgb  # noqa: F401 - fixtures

#: Lines TensorFlow's C++ runtime writes to stderr when it is imported, before any visopt code runs
#: (absl logging before InitializeLog; TF_CPP_MIN_LOG_LEVEL does not silence them).
TF_STARTUP = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl|To enable the following instructions)")


def visopt_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not TF_STARTUP.match(line)]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def tiles(grid, size, count, cols, margin=2):
    return [grid[r * (size + margin):r * (size + margin) + size, c * (size + margin):c * (size + margin) + size]
            for r, c in (divmod(i, cols) for i in range(count))]


def test_filters_writes_a_grid_whose_tiles_differ(model_file, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["filters", str(model_file), "conv_b", "--filters", "4", "--steps", "30", "--zoom", "1",
                 "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    grid = read_rgb(out)
    assert grid.shape == (2 * 16 + 2, 2 * 16 + 2, 3)  # 2x2 tiles of 16 px, 2 px margins
    parts = tiles(grid, 16, 4, cols=2)
    assert all(part.std() > 1 for part in parts)  # not blank
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(parts[i].astype(int) - parts[j].astype(int)).mean() > 2, (i, j)


def test_filters_chosen_by_list_and_enlarged(model_file, tmp_path):
    out = tmp_path / "two.png"
    assert main(["filters", str(model_file), "conv_a", "--filters", "3,1", "--steps", "5", "--out", str(out)]) == 0
    assert read_rgb(out).shape == (128, 2 * 128 + 2, 3)  # auto zoom: 16 px -> 128 px, two tiles in a row


def test_a_missing_layer_lists_the_valid_ones_and_writes_nothing(model_file, tmp_path, capsys):
    out = tmp_path / "never.png"
    assert main(["filters", str(model_file), "conv_x", "--out", str(out)]) == 1
    line = one_error_line(capsys)
    assert line.startswith("visopt filters: error: no layer named 'conv_x'")
    assert "'conv_a'" in line and "'conv_b'" in line and "'out'" in line
    assert not out.exists()


@pytest.mark.parametrize("option, message", [
    (["--filters", "0,9"], "--filters '0,9': index 9 is out of range: layer 'conv_a' has 4 (valid indices 0..3)"),
    (["--filters", "x"], "--filters 'x' is not a count or a comma-separated list"),
    (["--out", "grid.txt"], "must end in .png, .jpg, .jpeg"),
])
def test_bad_options_are_named(model_file, tmp_path, capsys, option, message):
    assert main(["filters", str(model_file), "conv_a", *option]) == 1
    assert message in one_error_line(capsys)


def test_a_usage_error_is_one_line_too(model_file, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["filters", str(model_file), "conv_a", "--input-range", "5,1"])
    assert stop.value.code == 2
    line = one_error_line(capsys)
    assert "--input-range" in line and "low < high" in line


def test_missing_file_and_not_a_model(tmp_path, capsys):
    assert main(["classes", str(tmp_path / "nothing.keras")]) == 1
    assert "no model file at" in one_error_line(capsys)
    fake = tmp_path / "notes.keras"
    fake.write_text("not a zip")
    assert main(["classes", str(fake)]) == 1
    assert "is not a Keras model: a .keras file is a zip archive" in one_error_line(capsys)
    (tmp_path / "notes.txt").write_text("x")
    assert main(["classes", str(tmp_path / "notes.txt")]) == 1
    assert "not a Keras model file: expected a name ending in .keras, .h5" in one_error_line(capsys)


def test_a_lambda_model_is_refused_in_one_line_without_traceback(lambda_model_file, tmp_path):
    out = tmp_path / "lambda.png"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-m", "visopt", "filters", str(lambda_model_file), "conv_a",
                           "--out", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = visopt_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("visopt filters: error: model file") and "Lambda layer(s) ['scale']" in lines[0]
    assert "safe mode" in lines[0] and "--unsafe" in lines[0]
    assert not out.exists()


def test_unsafe_loads_the_lambda_model(lambda_model_file, tmp_path):
    out = tmp_path / "lambda.png"
    assert main(["filters", str(lambda_model_file), "conv_a", "--unsafe", "--filters", "2", "--steps", "5",
                 "--out", str(out)]) == 0
    assert read_rgb(out).shape == (128, 258, 3)


def test_classes_grid_one_row_per_class_and_animation(model_file, tmp_path, capsys):
    out, gif = tmp_path / "classes.png", tmp_path / "progress.gif"
    assert main(["classes", str(model_file), "--classes", "0,2", "--per-class", "2", "--steps", "10", "--zoom", "1",
                 "--class-names", "a,b,c", "--out", str(out), "--animation", str(gif)]) == 0
    assert read_rgb(out).shape == (2 * 16 + 2, 2 * 16 + 2, 3)  # rows: classes 0 and 2; columns: 2 images each
    assert gif.read_bytes()[:6] == b"GIF89a"
    err = capsys.readouterr().err
    assert "rows: 0 a, 2 c" in err and "of the class images as their class" in err


def _model_and_images(model_file, image_folder):
    model = visopt.model.layers.load_model_file(model_file)
    images = np.stack([read_rgb(image_folder / f"im{i}.png") for i in range(3)]).astype(np.float32)
    return model, images


def test_cam_overlays_beside_the_images_are_the_library_maps(model_file, image_folder, capsys):
    paths = [str(image_folder / f"im{i}.png") for i in range(3)]
    assert main(["cam", str(model_file), *paths, "--alpha", "1", "--zoom", "1"]) == 0
    model, images = _model_and_images(model_file, image_folder)
    labels = model.predict(images, verbose=0).argmax(axis=1)
    maps = visopt.visualize_cam(model, "out", [int(c) for c in labels], images)
    for i in range(3):
        written = read_rgb(image_folder / f"im{i}.cam-gradcam.png")
        np.testing.assert_array_equal(written, visopt.overlay(images[i].astype(np.uint8), maps[i], alpha=1))
    err = capsys.readouterr().err
    assert f"im0.png: class {labels[0]} (p=" in err


def test_saliency_into_a_folder_resizes_and_says_so(model_file, image_folder, tmp_path, capsys):
    out = tmp_path / "maps"
    assert main(["saliency", str(model_file), str(image_folder), "--method", "gradient", "--alpha", "0",
                 "--zoom", "1", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "resized 1 of 4 image(s) (30x40) to the model's input size 16x16" in captured.err
    assert sorted(p.name for p in out.iterdir()) == [f"im{i}.saliency-vanilla.png" for i in range(3)] + \
        ["wide.saliency-vanilla.png"]
    # alpha 0: the overlay is the image itself, at the size of its file
    np.testing.assert_array_equal(read_rgb(out / "wide.saliency-vanilla.png"), read_rgb(image_folder / "wide.png"))


def test_bad_images_are_named_before_any_work(model_file, image_folder, tmp_path, capsys):
    (image_folder / "broken.png").write_bytes(b"\x89PNG not really")
    assert main(["saliency", str(model_file), str(image_folder / "im0.png"), str(image_folder / "broken.png"),
                 "--out", str(tmp_path / "o")]) == 1
    assert f"cannot read '{image_folder / 'broken.png'}' as an image" in one_error_line(capsys)
    assert main(["cam", str(model_file), str(image_folder / "wide.png"), "--no-resize"]) == 1
    assert "is 30x40; the model takes 16x16 (16x16 with 3 channel(s))" in one_error_line(capsys)
    assert not (tmp_path / "o").exists() and not (image_folder / "im0.cam-gradcam.png").exists()
