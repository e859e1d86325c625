"""WeightSnapshot, the snapshot store, weight images and the ``visopt render`` command: counts, values, names, errors."""

import base64
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import imageio.v2 as imageio
import keras
import numpy as np
import pytest

from visopt import SnapshotFolder, WeightSnapshot, render_snapshots
from visopt.cli import main as cli_main
from visopt.render.colormaps import colormap_lut, colour_scale, special_colours
from visopt.render.weight_images import WeightRenderer
from visopt.training import NpyStack, SnapshotStore

ROOT = Path(__file__).resolve().parents[2]


def tiny_cnn(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(2, name="out")(x)
    model = keras.Model(inputs, outputs, name="tiny")
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model


def data(samples, shape=(8, 8, 1), outputs=2, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(samples,) + shape).astype("float32"),
            rng.normal(size=(samples, outputs)).astype("float32"))


def frames_of(path):
    path = Path(path)
    if path.is_dir():
        return [imageio.imread(p) for p in sorted(path.glob("*.png"))]
    if path.suffix == ".gif":
        return [np.asarray(frame)[..., :3] for frame in imageio.mimread(path)]
    with imageio.get_reader(path) as reader:
        return [np.asarray(frame) for frame in reader]


def expected_records(epochs, steps, batch_interval, epoch_interval=1):
    """The documented rule: batch 0 and every batch_interval-th batch of every epoch_interval-th epoch."""
    return [{"epoch": e, "batch": b, "step": e * steps + b}
            for e in range(epochs) if e % epoch_interval == 0
            for b in range(steps) if b % batch_interval == 0]


# -- training, videos and names -----------------------------------------------------------------
def test_snapshots_counts_values_and_videos(tmp_path):
    model = tiny_cnn()
    initial = {w.path: np.array(w.numpy()) for w in model.trainable_weights}
    x, y = data(160)
    callback = WeightSnapshot(tmp_path / "w", batch_interval=10, render_videos=True, fps=4)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[callback])

    # 2 epochs x 20 batches, every 10 batches from batch 0: 4 snapshots on one timeline
    assert callback.snapshots == 4 and not callback.failed
    folder = SnapshotFolder(tmp_path / "w")
    assert folder.records == [{"epoch": 0, "batch": 0, "step": 0}, {"epoch": 0, "batch": 10, "step": 10},
                              {"epoch": 1, "batch": 0, "step": 20}, {"epoch": 1, "batch": 10, "step": 30}]
    assert folder.manifest["complete"] is True
    assert [(w["path"], w["layer"], w["index"], w["shape"], w["kind"]) for w in folder.weights] == [
        ("conv/kernel", "conv", 1, [3, 3, 1, 3], "conv"), ("conv/bias", "conv", 2, [3], "vector"),
        ("out/kernel", "out", 1, [108, 2], "matrix"), ("out/bias", "out", 2, [2], "vector")]
    for weight in folder.weights:
        stack = np.load(tmp_path / "w" / weight["file"])
        assert stack.shape == (4,) + tuple(weight["shape"]) and stack.dtype == np.float32
        np.testing.assert_array_equal(stack[0], initial[weight["path"]])  # batch 0 is before any update
        assert all(np.abs(stack[i + 1] - stack[i]).max() > 1e-4 for i in range(3))  # training moves them

    names = sorted(p.name for p in callback.video_paths)
    assert names == ["layer_conv-weights_01.mp4", "layer_conv-weights_02.mp4", "layer_out-weights_01.mp4",
                     "layer_out-weights_02.mp4"]
    for path in callback.video_paths:
        frames = frames_of(path)
        assert len(frames) == 4
        changes = [np.abs(frames[i + 1].astype(int) - frames[i]).mean() for i in range(3)]
        assert min(changes) > 0.5, (path.name, changes)


def test_interval_rule_epochs_and_batches(tmp_path):
    model = tiny_cnn()
    x, y = data(7 * 4)
    callback = WeightSnapshot(tmp_path, epoch_interval=2, batch_interval=3)
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0, callbacks=[callback])
    records = SnapshotFolder(tmp_path).records
    assert records == expected_records(epochs=3, steps=7, batch_interval=3, epoch_interval=2)
    assert len(records) == 6 and callback.video_paths == []  # kept, not rendered


def test_per_epoch_files_and_gif(tmp_path):
    model = tiny_cnn()
    x, y = data(48)
    callback = WeightSnapshot(tmp_path, batch_interval=2, render_videos=True, video_format="gif", per_epoch=True,
                              weights=["out"])
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[callback])
    counts = {p.name: len(frames_of(p)) for p in callback.video_paths}
    assert counts == {"layer_out-weights_01.gif": 6, "layer_out-weights_02.gif": 6,
                      "epoch_000-layer_out-weights_01.gif": 3, "epoch_000-layer_out-weights_02.gif": 3,
                      "epoch_001-layer_out-weights_01.gif": 3, "epoch_001-layer_out-weights_02.gif": 3}


def test_nested_sequential_and_unbuilt_models(tmp_path):
    keras.utils.set_random_seed(1)
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")], name="inner")
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(4, name="dense")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(inner(hidden)))
    model.compile("sgd", "mse")
    x, y = data(40, shape=(5,))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[WeightSnapshot(tmp_path / "nested",
                                                                                 batch_interval=5)])
    folder = SnapshotFolder(tmp_path / "nested")
    assert [(w["path"], w["name"]) for w in folder.weights] == [
        ("dense/kernel", "layer_dense-weights_01"), ("dense/bias", "layer_dense-weights_02"),
        ("inner/dense/kernel", "layer_inner.dense-weights_01"), ("inner/dense/bias", "layer_inner.dense-weights_02"),
        ("head/kernel", "layer_head-weights_01"), ("head/bias", "layer_head-weights_02")]
    np.testing.assert_array_equal(folder.values("inner/dense/kernel")[-1].shape, (4, 3))
    assert len(folder) == 2

    # a Sequential without Input is built by its first batch: recording starts at batch 1
    keras.utils.set_random_seed(2)
    lazy = keras.Sequential([keras.layers.Dense(3, name="a"), keras.layers.Dense(2, name="b")])
    lazy.compile("sgd", "mse")
    lazy.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[WeightSnapshot(tmp_path / "lazy", batch_interval=5)])
    assert [(r["epoch"], r["batch"]) for r in SnapshotFolder(tmp_path / "lazy").records] == [
        (0, 1), (0, 5), (1, 0), (1, 5)]


# -- colour scale ---------------------------------------------------------------------------------
def test_colour_scale_is_fixed_over_the_run(tmp_path):
    # a 4x4 matrix: element 0 never changes; the run's min is in the first snapshot, its max in the last
    snapshots = np.zeros((3, 4, 4), np.float32)
    snapshots[:] = np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4)
    snapshots[:, 0, 0] = 0.3
    snapshots[0, 1, 1] = -2.0
    snapshots[1] *= 0.5
    snapshots[1, 0, 0] = 0.3
    snapshots[2, 2, 2] = 3.0
    weight = {"path": "d/kernel", "layer": "d", "index": 1, "name": "layer_d-weights_01", "shape": [4, 4],
              "kind": "matrix", "gates": 1}
    store = SnapshotStore(tmp_path, [weight])
    for step, array in enumerate(snapshots):
        store.append({"epoch": 0, "batch": step, "step": step}, [array])
    store.close()

    for cmap, low, high in (("gray", -2.0, 3.0), ("RdBu", -3.0, 3.0)):
        (path,) = render_snapshots(tmp_path, format="png", cmap=cmap, annotate=False, out=tmp_path / cmap)
        frames = frames_of(path)
        assert len(frames) == 3
        index_map = WeightRenderer((4, 4), "matrix", cmap=cmap, value_range=(low, high)).index_map
        lut = colormap_lut(cmap)

        def colour(frame, element):
            pixels = frames[frame][index_map == element]
            assert (pixels == pixels[0]).all()
            return tuple(pixels[0])

        constant = {colour(i, 0) for i in range(3)}
        expected = tuple(lut[int(np.rint((0.3 - low) * 255 / (high - low)))])
        assert constant == {expected}  # an unchanged weight keeps its colour in every frame
        assert colour(0, 5) == tuple(lut[0 if cmap == "gray" else int(np.rint((-2 + 3) * 255 / 6))])
        assert colour(2, 10) == tuple(lut[255])  # the run's max is the top colour in the last frame
        if cmap == "gray":
            assert colour(0, 5) == (0, 0, 0) and colour(2, 10) == (255, 255, 255)


def test_trained_run_uses_its_global_range(tmp_path):
    model = tiny_cnn()
    x, y = data(64)
    callback = WeightSnapshot(tmp_path, batch_interval=2, render_videos=True, video_format="png", cmap="gray",
                              weights=["out/kernel"])
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    stack = SnapshotFolder(tmp_path).values("out/kernel")
    low, high = colour_scale(stack, "gray")
    assert (low, high) == (float(stack.min()), float(stack.max()))
    renderer = WeightRenderer(stack.shape[1:], "matrix", cmap="gray", value_range=(low, high))
    frames = frames_of(callback.video_paths[0])
    band = frames[0].shape[0] - renderer.shape[0]  # the caption band on top
    # the 432x16 picture is centred on a frame wide enough for its caption
    assert frames[0].shape[1] > 100 and renderer.shape[1] == 16
    left = (frames[0].shape[1] - renderer.shape[1]) // 2
    pictures = [frame[band:, left:left + renderer.shape[1]] for frame in frames]
    for i, picture in enumerate(pictures):
        np.testing.assert_array_equal(picture, renderer(stack[i]))
    argmin, argmax = np.unravel_index(stack.argmin(), stack.shape), np.unravel_index(stack.argmax(), stack.shape)
    flat = np.ravel_multi_index
    assert (pictures[argmin[0]][renderer.index_map == flat(argmin[1:], stack.shape[1:])] == 0).all()
    assert (pictures[argmax[0]][renderer.index_map == flat(argmax[1:], stack.shape[1:])] == 255).all()


# -- layouts --------------------------------------------------------------------------------------
def test_conv1d_and_lstm_kernels_render(tmp_path):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6, 2))
    x = keras.layers.Conv1D(4, 3, padding="same", name="conv1d")(inputs)
    x = keras.layers.LSTM(5, name="lstm")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    model.compile("adam", "mse")
    xs, ys = data(16, shape=(6, 2))
    callback = WeightSnapshot(tmp_path, batch_interval=2, render_videos=True, video_format="png", cmap="RdBu")
    model.fit(xs, ys, batch_size=4, epochs=1, verbose=0, callbacks=[callback])
    folder = SnapshotFolder(tmp_path)
    kinds = {w["path"]: (w["kind"], w["gates"]) for w in folder.weights}
    assert kinds["conv1d/kernel"] == ("conv", 1) and kinds["lstm/lstm_cell/kernel"] == ("rnn", 4)
    assert kinds["lstm/lstm_cell/recurrent_kernel"] == ("rnn", 4) and kinds["lstm/lstm_cell/bias"] == ("rnn", 4)
    assert {p.name for p in callback.video_paths} >= {"layer_conv1d-weights_01", "layer_lstm-weights_01"}

    # LSTM kernel (2, 20): four (2, 5) gate blocks side by side, split by 3-pixel separator columns
    separator = np.array(special_colours("RdBu")[0])
    kernel_frames = frames_of(tmp_path / "layer_lstm-weights_01")
    assert len(kernel_frames) == 2
    renderer = WeightRenderer((2, 20), "rnn", gates=4, cmap="RdBu", value_range=(-1, 1))
    body = kernel_frames[0][-renderer.shape[0]:]
    is_line = (body == separator).all(axis=(0, 2))
    runs = np.flatnonzero(np.diff(np.concatenate([[0], is_line.astype(int), [0]])))
    assert len(runs) == 6 and (runs[1::2] - runs[::2] == 3).all()  # 3 separators: 4 blocks
    columns = [renderer.index_map[0, x] % 20 for x in range(body.shape[1]) if not is_line[x]]
    blocks = np.split(np.array(columns), np.flatnonzero(np.diff(np.array(columns) // 5)) + 1)
    assert [sorted(set(block // 5)) for block in blocks] == [[0], [1], [2], [3]]  # gate g = units 5g..5g+4

    # Conv1D kernel (3, 2, 4): one 3 x 2 tile (k x in) per filter
    conv = WeightRenderer((3, 2, 4), "conv", cmap="gray", value_range=(0, 1))
    tiles = {}
    for flat in np.unique(conv.index_map[conv.index_map < 24]):
        k, c, o = np.unravel_index(flat, (3, 2, 4))
        ys_, xs_ = np.nonzero(conv.index_map == flat)
        tiles.setdefault(o, []).append((k, c, ys_.min(), xs_.min()))
    assert sorted(tiles) == [0, 1, 2, 3]
    for cells in tiles.values():
        top = min(y for _, _, y, _ in cells)
        left = min(x for _, _, _, x in cells)
        for k, c, y, x in cells:  # rows follow k, columns follow the input channel
            assert (y - top) == k * conv.scale and (x - left) == c * conv.scale
    assert len(frames_of(tmp_path / "layer_conv1d-weights_01")) == 2


def test_unknown_colour_map_raises_before_training():
    with pytest.raises(ValueError, match="unknown colour map"):
        WeightSnapshot("unused", cmap="nope")


def test_npy_stack_is_loadable_while_growing_and_holds_no_file_open(tmp_path):
    stack = NpyStack(tmp_path / "s.npy", (2, 3))
    assert np.load(tmp_path / "s.npy").shape == (0, 2, 3)
    for i in range(3):
        stack.append(np.full((2, 3), i))
        loaded = np.load(tmp_path / "s.npy", mmap_mode="r")  # no flush: the append is on disk when it returns
        assert loaded.shape == (i + 1, 2, 3) and loaded[i, 1, 2] == i
    del loaded  # the memory map holds its own handle
    assert not any(str(tmp_path) in os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                   if os.path.exists(f"/proc/self/fd/{fd}"))


# -- MirroredStrategy -------------------------------------------------------------------------------
def test_mirrored_strategy_writes_what_a_plain_run_writes(tmp_path):
    plain, mirrored = tmp_path / "plain", tmp_path / "mirrored"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "training" / "weight_snapshot_mirrored.py"), str(plain),
                             str(mirrored)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2 and report["variable_type"] == "MirroredVariable"
    assert report["plain"]["snapshots"] == report["mirrored"]["snapshots"] == 4
    assert not report["plain"]["failed"] and not report["mirrored"]["failed"]
    first, second = SnapshotFolder(plain), SnapshotFolder(mirrored)
    assert first.weights == second.weights and first.records == second.records
    for weight in first.weights:
        np.testing.assert_allclose(first.values(weight["path"]), second.values(weight["path"]), atol=1e-5)
    videos = sorted(Path(p).name for p in report["plain"]["videos"])
    assert videos == sorted(Path(p).name for p in report["mirrored"]["videos"])
    assert sorted(p.name for p in mirrored.iterdir() if p.suffix == ".mp4") == videos  # one writer, no extras
    for name in videos:
        assert len(frames_of(plain / name)) == len(frames_of(mirrored / name)) == 4


# -- errors ----------------------------------------------------------------------------------------
class BatchCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.batches += 1


def test_output_dir_that_is_a_file_raises_before_training(tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    counter = BatchCounter()
    model = tiny_cnn()
    x, y = data(16)
    with pytest.raises(NotADirectoryError, match=str(target)):
        model.fit(x, y, batch_size=8, verbose=0, callbacks=[WeightSnapshot(target), counter])
    assert counter.batches == 0
    with pytest.raises(OSError, match=str(target / "sub")):
        model.fit(x, y, batch_size=8, verbose=0, callbacks=[WeightSnapshot(target / "sub"), counter])
    assert counter.batches == 0


def test_write_failure_warns_once_and_training_finishes(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = NpyStack.append

    def failing(self, array):
        calls["n"] += 1
        if calls["n"] > 4:  # the first snapshot (4 weights) goes through, then the disk is full
            raise OSError(28, "No space left on device")
        original(self, array)

    monkeypatch.setattr(NpyStack, "append", failing)
    model = tiny_cnn()
    x, y = data(80)
    callback = WeightSnapshot(tmp_path, batch_interval=2, render_videos=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[callback])
    ours = [w for w in caught if "WeightSnapshot" in str(w.message)]
    assert len(ours) == 1 and "No space left" in str(ours[0].message) and str(tmp_path) in str(ours[0].message)
    assert len(history.history["loss"]) == 2  # training went on
    assert callback.failed and callback.video_paths == []
    assert np.load(tmp_path / "snapshots" / "layer_out-weights_01.npy").shape[0] == 1  # what was written stays


def test_unknown_weight_selection_names_valid_paths(tmp_path):
    model = tiny_cnn()
    x, y = data(8)
    with pytest.raises(ValueError, match="'nope'.*conv/kernel"):
        model.fit(x, y, verbose=0, callbacks=[WeightSnapshot(tmp_path, weights=["nope"])])


# -- command line ----------------------------------------------------------------------------------
def test_render_command_turns_kept_snapshots_into_videos(tmp_path, capsys):
    model = tiny_cnn()
    x, y = data(48)
    callback = WeightSnapshot(tmp_path / "run", batch_interval=3)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[callback])
    assert callback.snapshots == 4 and not list((tmp_path / "run").glob("*.mp4"))  # kept, not rendered

    assert cli_main(["render", str(tmp_path / "run"), "--format", "gif", "--cmap", "RdBu", "--fps", "5",
                     "--out", str(tmp_path / "gifs")]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == ["layer_conv-weights_01.gif", "layer_conv-weights_02.gif",
                                                     "layer_out-weights_01.gif", "layer_out-weights_02.gif"]
    assert all(len(frames_of(p)) == 4 for p in printed)

    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-m", "visopt", "render", str(tmp_path / "run"), "--weights",
                             "out/kernel"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(frames_of(tmp_path / "run" / "layer_out-weights_01.mp4")) == 4

    assert cli_main(["render", str(tmp_path / "missing")]) == 1
    assert "missing" in capsys.readouterr().err


def test_html_lists_the_videos_by_weight_and_video_finds_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tiny_cnn()
    x, y = data(32)
    callback = WeightSnapshot("w", batch_interval=2, render_videos=True, per_epoch=True, weights=["out"])
    assert "no videos yet" in callback._repr_html_()
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[callback])
    html = callback._repr_html_()
    assert "4 snapshots of 2 weights in <code>w</code>" in html
    assert '<video src="w/layer_out-weights_01.mp4"' in html and '<video src="w/layer_out-weights_02.mp4"' in html
    assert "<figcaption" in html and "out/kernel (" in html and "out/bias (" in html
    assert "and 4 per-epoch videos" in html and "epoch_000" not in html and len(html) < 2000
    for key in ("out/kernel", "layer_out-weights_01", "layer_out-weights_01.mp4", "w/layer_out-weights_01.mp4"):
        assert callback.video(key).path == Path("w/layer_out-weights_01.mp4")
    epoch = callback.video("epoch_001-layer_out-weights_02")
    assert epoch.path.name == "epoch_001-layer_out-weights_02.mp4" and epoch.label == "out/bias (epoch 1)"
    assert '<video src="w/epoch_001-layer_out-weights_02.mp4"' in epoch._repr_html_()
    with pytest.raises(ValueError, match=r"no video of 'conv/kernel' in 'w'; valid: \['out/kernel', 'out/bias', "):
        callback.video("conv/kernel")


def test_small_gifs_are_embedded_in_the_html(tmp_path):
    model = tiny_cnn()
    x, y = data(16)
    callback = WeightSnapshot(tmp_path / "g", batch_interval=2, render_videos=True, video_format="gif",
                              weights=["out/bias"])
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
    (gif,) = callback.video_paths
    assert gif.stat().st_size < 64 * 1024
    assert f"data:image/gif;base64,{base64.b64encode(gif.read_bytes()).decode()}" in callback._repr_html_()


def test_the_text_repr_says_where_and_what(tmp_path):
    snapshot = WeightSnapshot(tmp_path / "w", batch_interval=7)
    assert repr(snapshot) == f"WeightSnapshot({str(tmp_path / 'w')!r}, batch_interval=7: 0 snapshots, 0 videos)"
