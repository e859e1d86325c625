"""What a notebook shows of a run: the result's HTML, the progress bar's output, notebook-sized animations."""

import base64
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
import pytest

from conftest import small_conv_model
from visopt import ActivationMaximization, Optimizer, ProgressBar, ProgressRecorder, TotalVariation, show
from visopt.optvis import progress_recorder

ROOT = Path(__file__).resolve().parents[2]
# TensorFlow's C++ logging writes these before its log level applies: not visopt's output
TF_LOG = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} |To enable the following instructions)")


@pytest.fixture(scope="module")
def optimizer():
    model = small_conv_model((16, 16, 3), seed=5)
    return Optimizer(model, ActivationMaximization("conv_b", [0, 1]) + 0.1 * TotalVariation())


def png_in(html: str) -> np.ndarray:
    data = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    return cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def test_result_html_shows_images_steps_terms_and_the_animation(tmp_path, monkeypatch, optimizer):
    monkeypatch.chdir(tmp_path)
    result = optimizer.minimize(max_iter=8, seed=0, verbose=False, progress_gif_path="runs/opt.gif", frame_every=4)
    assert result.animation_path == Path("runs/opt.gif") and result.input_range == (0.0, 255.0)
    html = result._repr_html_()
    assert "2 images 16x16x3 uint8, 8 steps" in html
    np.testing.assert_array_equal(png_in(html), show(result).pixels)  # the image grid
    for name, values in result.history.items():
        assert f"<td>{name}</td><td>{float(values[-1].mean()):.4g}</td>" in html
    gif = base64.b64encode(Path("runs/opt.gif").read_bytes()).decode()  # a small GIF: embedded
    assert f'src="data:image/gif;base64,{gif}"' in html
    assert len(html) < 4 * (len(show(result).png()) + Path("runs/opt.gif").stat().st_size) / 3 + 3000
    text = repr(result)
    assert "\n" not in text and "animation_path='runs/opt.gif'" in text and len(text) < 200
    assert Optimizer.__module__ and optimizer.minimize(max_iter=2, verbose=False).animation_path is None


def test_the_progress_bar_starts_after_tracing_writes_few_updates_and_one_summary():
    out = io.StringIO()
    bar = ProgressBar(file=out)
    values = {"activation": np.array([-2.0, -4.0]), "loss": np.array([-1.0, -3.0])}
    bar.on_begin(200, 2)
    time.sleep(1.0)  # the first step: tracing
    elapsed_at_half = None
    for step in range(200):
        bar.on_step(step, None, values)
        if step == 100:
            elapsed_at_half = bar._bar.format_dict["elapsed"]
        time.sleep(0.006)
    bar.on_end(None)
    assert elapsed_at_half < 0.9  # the bar's clock (rate, ETA) started after the traced first step
    written = out.getvalue()
    updates = written.count("\r")
    assert 2 <= updates <= 6, written  # the first display, one a second, the clearing: not one per step
    lines = written.split("\r")[-1].splitlines()
    assert len(lines) == 1 and lines[0] == bar.summary
    assert re.fullmatch(r"visopt: 200 steps of 2 images in \d\.\d s \(first step 1\.\d s, with tracing; then "
                        r"\d+ steps/s\); mean loss -2, activation -3", bar.summary), bar.summary


def test_a_stopped_run_says_where_it_stopped():
    out = io.StringIO()
    bar = ProgressBar(file=out)
    bar.on_begin(50, 1)
    for step in range(3):
        bar.on_step(step, None, {"loss": np.array([0.5])})
    bar.on_abort(KeyboardInterrupt())
    assert out.getvalue().splitlines()[-1].startswith("visopt: stopped after 3 of 50 steps (KeyboardInterrupt)")


def test_a_real_run_writes_a_handful_of_stderr_updates(capsys, optimizer):
    optimizer.minimize(max_iter=150, seed=0, verbose=True)
    err = capsys.readouterr().err
    assert err.count("\r") <= 8, err
    assert len(re.findall(r"(?:^|\r)visopt: 150 steps of 2 images in ", err, re.M)) == 1


def test_import_and_a_run_in_a_notebook_without_ipywidgets_print_nothing_of_visopts(tmp_path):
    fake = tmp_path / "fake"
    (fake / "IPython").mkdir(parents=True)
    (fake / "ipykernel").mkdir()
    (fake / "ipykernel" / "__init__.py").write_text("")
    (fake / "ipykernel" / "zmqshell.py").write_text("class ZMQInteractiveShell:\n    config = {'IPKernelApp': {}}\n")
    (fake / "IPython" / "__init__.py").write_text(  # the condition under which tqdm.auto warns (TqdmWarning)
        "import ipykernel.zmqshell\n_SHELL = ipykernel.zmqshell.ZMQInteractiveShell()\n"
        "def get_ipython():\n    return _SHELL\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake), str(ROOT)]), TF_CPP_MIN_LOG_LEVEL="3")
    code = ("import IPython, warnings\nwarnings.simplefilter('always')\nimport visopt\n"
            "import sys; print('imported', file=sys.stderr)\n"
            "from visopt.frames.display import in_notebook; assert in_notebook()\n"
            "import numpy as np\nbar = visopt.ProgressBar()\nbar.on_begin(200, 1)\n"
            "for step in range(200):\n    bar.on_step(step, None, {'loss': np.array([1.0])})\nbar.on_end(None)\n")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    ours = [line for line in run.stderr.splitlines() if not TF_LOG.match(line)]
    assert run.stdout == "" and ours[0] == "imported", run.stderr  # nothing at import
    assert "Tqdm" not in run.stderr and "IProgress" not in run.stderr
    assert ours[-1].startswith("visopt: 200 steps of 1 images in ")


def test_notebook_animations_are_small_by_default(tmp_path, monkeypatch, optimizer):
    plain = ProgressRecorder(tmp_path / "plain.gif")
    optimizer.minimize(max_iter=100, seed=0, verbose=False, callbacks=[plain])
    monkeypatch.setattr(progress_recorder, "in_notebook", lambda: True)
    small = ProgressRecorder(tmp_path / "small.gif")
    full = ProgressRecorder(tmp_path / "full.gif", max_frames=None, min_size=256)
    optimizer.minimize(max_iter=100, seed=0, verbose=False, callbacks=[small, full])
    assert (plain.frames, full.frames) == (100, 100)
    assert small.frames == 26 and small.max_frames == 30  # every ceil(100 / 29) = 4th: 0, 4, ..., 96 and 99
    frames = iio.imread(tmp_path / "small.gif", index=None)
    # two 16 px tiles: a 33 px grid enlarged x3 (<= 128 px), not x7 (<= 256 px)
    assert frames.shape[0] == 26 and frames.shape[2] == 3 * 33
    assert iio.imread(tmp_path / "full.gif", index=None).shape[2] == 7 * 33
    assert (tmp_path / "small.gif").stat().st_size < (tmp_path / "full.gif").stat().st_size / 4
    with pytest.raises(ValueError, match=r"max_frames must be an int >= 2, got 1"):
        ProgressRecorder(tmp_path / "x.gif", max_frames=1)


def test_with_ipywidgets_the_widget_is_replaced_by_the_summary(monkeypatch):
    display_module = pytest.importorskip("IPython.display")
    from tqdm.std import tqdm

    from visopt.optvis import progress_bar

    class WidgetBar(tqdm):  # tqdm.notebook's interface: display=False, a container to display
        def __init__(self, *args, display=True, **kwargs):
            assert display is False
            super().__init__(*args, file=io.StringIO(), **kwargs)
            self.container = "the widget"

    class Handle:
        updates = []

        def update(self, data, raw=False):
            self.updates.append((data, raw))

    shown = []
    monkeypatch.setattr(progress_bar, "_bar_class", lambda: (WidgetBar, True))
    monkeypatch.setattr(display_module, "display", lambda obj, display_id: shown.append(obj) or Handle())
    out = io.StringIO()
    bar = ProgressBar(file=out)
    bar.on_begin(5, 1)
    for step in range(5):
        bar.on_step(step, None, {"loss": np.array([2.0])})
    bar.on_end(None)
    assert shown == ["the widget"] and out.getvalue() == ""
    assert Handle.updates == [({"text/plain": bar.summary}, True)] and bar.summary.endswith("; mean loss 2")
