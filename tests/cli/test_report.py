"""visopt report: a self-contained page whose every link is a decodable file in its folder, in a
real headless browser where one is installed; an interrupted or failed report keeps the previous one."""

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from PIL import Image

from visopt.cli import main, report_parts

from cli_files import model_file, read_rgb  # noqa: F401 - fixtures

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".gif": b"GIF8", ".jpg": b"\xff\xd8\xff"}


@pytest.fixture(scope="module")
def report(model_file, tmp_path_factory):
    """A report with images (one resized) and an attached GIF; the folder it was written to."""
    root = tmp_path_factory.mktemp("report")
    images = root / "photos"
    images.mkdir()
    rng = np.random.default_rng(1)
    for name, shape in (("a", (16, 16, 3)), ("b", (16, 16, 3)), ("c", (24, 20, 3))):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(images / f"{name}.png")
    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (0, 255)]
    frames[0].save(root / "extra.gif", save_all=True, append_images=frames[1:])
    out = root / "out"
    assert main(["report", str(model_file), "--images", str(images), "--out", str(out), "--steps", "8",
                 "--filters", "3", "--per-class", "2", "--class-names", "x,y,z",
                 "--attach", str(root / "extra.gif")]) == 0
    return out


class Links(HTMLParser):
    """Every src/href of the page, and the ids it defines."""

    def __init__(self):
        super().__init__()
        self.links, self.ids, self.tags = [], set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("src", "href"):
            if attrs.get(key) is not None:
                self.links.append((tag, attrs[key]))


def parse(folder: Path) -> Links:
    links = Links()
    links.feed((folder / "index.html").read_text(encoding="utf-8"))
    return links


def test_every_link_is_a_relative_file_in_the_folder_that_decodes(report):
    links = parse(report)
    files = [(tag, target) for tag, target in links.links if not target.startswith("#")]
    assert {tag for tag, _ in files} == {"img"}  # pictures only: no script, no stylesheet, no network
    for tag, target in links.links:
        if target.startswith("#"):
            assert target[1:] in links.ids, target
            continue
        parts = urlsplit(target)
        assert not parts.scheme and not parts.netloc and not target.startswith("/"), target
        relative = PurePosixPath(unquote(parts.path))
        assert ".." not in relative.parts, target
        path = report / relative
        assert path.is_file(), target
        assert path.read_bytes().startswith(MAGIC[path.suffix.lower()]), f"{target} is not a {path.suffix} file"
        with Image.open(path) as image:
            image.load()
            assert image.width > 0 and image.height > 0
    shown = {unquote(t) for _, t in files}
    assert {"filters/conv_a/000.png", "filters/conv_b/002.png", "classes/002-1.png", "progress.gif",
            "images/02-c.png", "saliency/02-c.png", "cam/02-c.png"} <= shown
    assert any(t.startswith("attached/") and t.endswith("extra.gif") for t in shown)


def test_the_page_and_its_record_say_what_is_shown(report):
    page = (report / "index.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page and "<script" not in page
    for text in ("conv_a (Conv2D): filters 0..2 of 4", "class 2: z", "saliency: smoothgrad", "CAM: gradcam",
                 "resized 1 of 3 image(s) (24x20)", "Attached"):
        assert text.lower() in page.lower(), text
    record = json.loads((report / "report.json").read_text())
    assert record["generator"] == "visopt report"
    assert record["class_images"]["classes/002-1.png"] == 2
    listed = {str(p.relative_to(report)) for p in report.rglob("*") if p.is_file()} - {"report.json", "index.html"}
    assert set(record["files"]) == listed
    with Image.open(report / "progress.gif") as gif:
        assert gif.n_frames > 2  # an animation, not a still


def test_overlays_are_the_pictures_the_model_saw(report):
    picture = read_rgb(report / "images/00-a.png")
    assert picture.shape == (16, 16, 3)
    assert read_rgb(report / "cam/00-a.png").shape == picture.shape
    assert not np.array_equal(read_rgb(report / "saliency/00-a.png"), picture)


def _browser():
    return next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)


@pytest.mark.skipif(_browser() is None, reason="no headless Chromium/Chrome on PATH (apt-get install chromium)")
def test_every_picture_loads_in_a_headless_browser(report, tmp_path):
    # a copy of the page, in the same folder (same relative links), that writes what the browser loaded
    probe = report / "browser_probe.html"
    script = ("<script>window.addEventListener('load', () => { const r = [...document.images].map(i => "
              "[i.getAttribute('src'), i.complete && i.naturalWidth > 0]); const p = document.createElement('pre');"
              " p.id = 'probe'; p.textContent = JSON.stringify(r); document.body.appendChild(p); });</script>")
    probe.write_text((report / "index.html").read_text(encoding="utf-8").replace("</body>", script + "</body>"))
    try:
        done = subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                               "--virtual-time-budget=5000", f"--user-data-dir={tmp_path}", probe.as_uri()],
                              capture_output=True, text=True, timeout=90)
    finally:
        probe.unlink()
    found = done.stdout.split('<pre id="probe">', 1)
    assert len(found) == 2, done.stderr[-2000:]
    loaded = json.loads(found[1].split("</pre>", 1)[0].replace("&quot;", '"'))
    assert len(loaded) == len([1 for tag, _ in parse(report).links if tag == "img"])
    assert all(ok for _, ok in loaded), [src for src, ok in loaded if not ok]


@pytest.mark.parametrize("failure, status", [(KeyboardInterrupt, 130), (RuntimeError("disk gone"), 1)])
def test_an_interrupted_or_failed_report_keeps_the_previous_one(report, model_file, tmp_path, monkeypatch, capsys,
                                                                   failure, status):
    out = tmp_path / "kept"
    shutil.copytree(report, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(report_parts, "classes_section", fail)  # after the filters were written
    assert main(["report", str(model_file), "--out", str(out), "--steps", "3", "--filters", "1"]) == status
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]  # no temporary folder left beside it
    assert len([line for line in capsys.readouterr().err.splitlines() if "error" in line or "interrupted" in line]) == 1


def test_a_new_report_replaces_the_previous_one(report, model_file, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(report, out)
    assert main(["report", str(model_file), "--out", str(out), "--steps", "3", "--filters", "1",
                 "--layers", "conv_b"]) == 0
    assert sorted(p.name for p in (out / "filters").iterdir()) == ["conv_b"]
    assert not (out / "cam").exists()  # no --images this time: nothing of the old report is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]


def test_a_folder_that_is_not_a_report_is_refused(model_file, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["report", str(model_file), "--out", str(tmp_path)]) == 1
    assert "not an earlier report" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert main(["report", str(model_file), "--out", str(tmp_path), "--steps", "2", "--filters", "1",
                 "--overwrite"]) == 0
    assert not (tmp_path / "notes.txt").exists() and (tmp_path / "index.html").is_file()


def test_a_folder_holding_an_input_or_the_working_folder_is_refused(model_file, tmp_path, monkeypatch, capsys):
    out = tmp_path / "report"
    out.mkdir()
    inside = out / "model.keras"
    shutil.copyfile(model_file, inside)
    assert main(["report", str(inside), "--out", str(out), "--overwrite"]) == 1
    assert f"holds the input '{inside}'" in capsys.readouterr().err
    monkeypatch.chdir(out)
    assert main(["report", str(model_file), "--out", ".", "--overwrite"]) == 1
    assert "is the working folder or holds it" in capsys.readouterr().err
    assert inside.is_file()
