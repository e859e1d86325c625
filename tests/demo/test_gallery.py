"""The demo's gallery: it runs `visopt report` as a user would and reads the class images back from report.json."""

import json

import numpy as np
from matplotlib.figure import Figure

from conftest import small_conv_model
from visopt.demo import gallery


def test_the_demo_judges_the_class_images_the_report_wrote(tmp_path):
    model = small_conv_model((16, 16, 3), seed=3)
    model_file = tmp_path / "small.keras"
    model.save(model_file)
    out = tmp_path / "gallery"
    attached = tmp_path / "extra"
    attached.mkdir()
    gallery.save_figure(Figure(figsize=(1, 1)), attached / "f.png")
    gallery.write_about(attached, "  some\n  words ")
    command = gallery.run_report(model_file, out, ["--steps", "3", "--filters", "1", "--per-class", "2",
                                                   "--attach", str(attached)])
    assert command[1:4] == ["-m", "visopt", "report"]
    record = json.loads((out / "report.json").read_text())
    assert sorted(record["class_images"].values()) == [0, 0, 1, 1, 2, 2]
    shares = gallery.judge_class_images(out, {"model": model})
    # the same images, read back from lossless PNGs, so the same verdict as the report's own
    assert np.isclose(shares["model"], record["recognised"])
    assert "some words" in (out / "index.html").read_text()


def test_only_an_earlier_demo_folder_is_replaced(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    for name in ("filters_conv_1.png", "classes.png", "classes_stretched.png"):
        (old / name).write_bytes(b"")
    assert gallery.replaceable(old)
    (old / "notes.txt").write_text("mine")
    assert not gallery.replaceable(old)
    assert not gallery.replaceable(tmp_path / "missing")
