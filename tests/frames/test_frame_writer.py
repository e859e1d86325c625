"""The frame writer: right frame counts, frames as sent, atomic files, clear failures that never hang."""

import time

import imageio
import imageio.v3 as iio
import numpy as np
import pytest

from conftest import FullDisk
from visopt import FrameWriter, FrameWriterError
from visopt.frames import format_for
from visopt.render import to_rgb


def one_frame(folder, images, text=None, **options):
    """The frame FrameWriter makes of ``images``: written to a PNG folder and read back (PNG is lossless)."""
    path = folder / f"frame_{len(list(folder.iterdir()))}"
    with FrameWriter(path, format="png", **options) as writer:
        writer.write(images, text=text)
    (png,) = sorted(path.glob("*.png"))
    return iio.imread(png)


def frames(count, batch=4, size=16):
    """Batches whose i-th frame is filled with grey level 10*i (mod 256), so frames are told apart by value."""
    return [np.full((batch, size, size, 3), (10 * i) % 256, np.uint8) for i in range(count)]


def test_gif_has_one_frame_per_write_with_the_written_values(tmp_path):
    path = tmp_path / "sub" / "run.gif"
    with FrameWriter(path, annotate=False, min_size=16, max_size=64) as writer:
        for batch in frames(12, batch=1):
            writer.write(batch)
    decoded = iio.imread(path, index=None)
    assert decoded.shape[0] == 12 == writer.frames_written
    assert [int(np.median(f)) for f in decoded] == [10 * i for i in range(12)]


def test_mp4_frame_count_and_change(tmp_path):
    path = tmp_path / "run.mp4"
    with FrameWriter(path, fps=12, annotate=False) as writer:
        for batch in frames(20):
            writer.write(batch)
    decoded = [f for f in imageio.get_reader(path)]
    assert len(decoded) == 20
    centre = [int(np.median(f[8:-8, 8:-8])) for f in decoded]
    assert centre[-1] > centre[0] + 150  # lossy, but the grey ramp is there


def test_png_sequence_folder(tmp_path):
    path = tmp_path / "seq"
    with FrameWriter(path, annotate=False) as writer:
        for batch in frames(5):
            writer.write(batch)
    names = sorted(p.name for p in path.iterdir())
    assert names == [f"frame_{i:06d}.png" for i in range(5)]
    assert [p.name for p in tmp_path.iterdir()] == ["seq"]  # no temporary folder left
    with pytest.raises(FrameWriterError, match="not an empty folder"):
        FrameWriter(path)


def test_tensorboard_summaries(tmp_path):
    pytest.importorskip("tensorboard")
    import tensorflow as tf

    with FrameWriter(tmp_path / "logs", format="tensorboard", tag="progress") as writer:
        for batch in frames(3):
            writer.write(batch, text="x")
    events = list((tmp_path / "logs").glob("events.out.tfevents.*"))
    assert len(events) == 1
    steps = [v.tag for e in tf.compat.v1.train.summary_iterator(str(events[0])) for v in e.summary.value]
    assert steps == ["progress"] * 3


def test_tiling_picking_and_annotation(tmp_path):
    batch = np.zeros((4, 8, 8, 3), np.uint8)
    batch[2] = 255
    tiled = one_frame(tmp_path, batch, annotate=False, min_size=1)
    picked = one_frame(tmp_path, batch, annotate=False, min_size=1, image_index=2)
    assert tiled.shape == (17, 17, 3)  # 2x2 tiles of 8 with a 1-pixel margin
    assert picked.shape == (8, 8, 3) and picked.min() == 255
    image = one_frame(tmp_path, batch, "step 3", min_size=64)
    assert image.shape[0] > 51 and image.shape[1] == 51  # 17 pixels enlarged 3 times, and a band on top
    band = image[: image.shape[0] - 51]
    assert band.max() > 200 and band.mean() < 60  # white (anti-aliased) text on black
    writer = FrameWriter(tmp_path / "d.gif", image_index=9)
    with pytest.raises(IndexError, match="image_index 9"):  # on the caller's thread, before any encoding
        writer.write(batch)
    writer.abort()


def test_frame_size_bounds(tmp_path):
    big = np.zeros((2000, 1000, 3), np.uint8)
    assert one_frame(tmp_path, big, annotate=False, max_size=500).shape == (500, 250, 3)
    small = np.zeros((10, 20, 1), np.uint8)
    assert one_frame(tmp_path, small, annotate=False, min_size=100).shape == (50, 100, 3)


def test_colour_conversions():
    assert to_rgb(np.full((2, 2), 7, np.uint8))[0, 0].tolist() == [7, 7, 7]
    assert to_rgb(np.array([[[0.0], [1.0]]]), value_range=(0, 1))[0, 1].tolist() == [255, 255, 255]
    assert to_rgb(np.full((1, 1, 5), 9, np.uint8))[0, 0].tolist() == [9, 9, 9]
    with pytest.raises(ValueError, match="value_range"):
        to_rgb(np.zeros((2, 2, 3), np.float32))


def test_format_from_path():
    assert format_for("a/b.GIF") == "gif" and format_for("x.mp4") == "mp4" and format_for("frames") == "png"
    with pytest.raises(ValueError, match=r"'out.avi'.*\['gif', 'mp4', 'png', 'tensorboard'\]"):
        format_for("out.avi")
    with pytest.raises(ValueError, match="unknown frame format 'webm'"):
        format_for("x", "webm")


def test_nothing_appears_under_the_final_name_until_close(tmp_path):
    path = tmp_path / "run.gif"
    writer = FrameWriter(path)
    for batch in frames(3):
        writer.write(batch)
    time.sleep(0.2)
    assert not path.exists()
    writer.close()
    assert path.exists()


def test_an_interrupted_run_leaves_no_file(tmp_path):
    path = tmp_path / "run.mp4"
    with pytest.raises(KeyboardInterrupt):
        with FrameWriter(path) as writer:
            for i, batch in enumerate(frames(10)):
                writer.write(batch)
                if i == 4:
                    raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_write_failure_is_reported_once_and_never_hangs(tmp_path, monkeypatch):
    path = tmp_path / "run.gif"
    writer = FrameWriter(path, queue_size=1)

    def disk_full(frame):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer._sink, "add", disk_full)
    start = time.perf_counter()
    with pytest.raises(FrameWriterError, match=r"run.gif failed: .*No space left on device"):
        for batch in frames(50):
            writer.write(batch)
    for batch in frames(50):  # later writes are dropped quietly, without blocking
        writer.write(batch)
    assert writer.close() is None  # already reported
    assert time.perf_counter() - start < 20
    assert list(tmp_path.iterdir()) == []


def test_a_failure_found_at_close_leaves_no_file_and_no_thread(tmp_path, monkeypatch):
    import threading

    writer = FrameWriter(tmp_path / "late.gif", queue_size=16)  # frames handed over 8 at a time

    def disk_full(frame):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer._sink, "add", disk_full)
    for batch in frames(9):  # 8 handed over (they fail on the encoder), 1 still pending at close
        writer.write(batch)
    time.sleep(0.3)  # the encoder has failed on the handed-over batch by now
    with pytest.raises(FrameWriterError, match="No space left on device"):
        writer.close()  # hands over the pending frame to a failed encoder, and still cleans up
    assert list(tmp_path.iterdir()) == []  # the partial GIF is deleted
    assert not any(t.name == "visopt-frames-late.gif" for t in threading.enumerate())
    assert writer.close() is None  # closed for good


def test_unwritable_path_fails_before_any_frame(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FrameWriterError, match=r"cannot write frames to .*file/run.gif"):
        FrameWriter(blocker / "run.gif")


@pytest.mark.parametrize("kwargs, pattern", [
    ({"fps": 0}, "fps must be a positive number, got 0"),
    ({"min_size": 10, "max_size": 5}, "min_size <= max_size"),
    ({"queue_size": 0}, "queue_size must be a positive int, got 0"),
])
def test_bad_options(tmp_path, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        FrameWriter(tmp_path / "x.gif", **kwargs)


def test_a_long_caption_shrinks_to_fit_a_narrow_frame(tmp_path):
    image = one_frame(tmp_path, np.zeros((64, 64, 3), np.uint8), "epoch 3  batch 10  step 70", min_size=64)
    band = image[: image.shape[0] - 64]
    lit = np.where(band.max(axis=(0, 2)) > 100)[0]
    assert lit.min() >= 1 and lit.max() <= 62  # the whole text is inside the frame
    assert lit.max() - lit.min() > 40  # and was drawn, not dropped


def test_no_frames_means_no_file(tmp_path):
    writer = FrameWriter(tmp_path / "empty.gif")
    with pytest.raises(FrameWriterError, match="no frames were written"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_max_size_alone_lowers_the_default_min_size(tmp_path):
    assert one_frame(tmp_path, np.zeros((32, 32, 3), np.uint8), max_size=128, annotate=False).shape == (128, 128, 3)


def test_a_writer_never_closed_is_collected_and_leaves_no_file(tmp_path):
    import gc
    import threading

    writer = FrameWriter(tmp_path / "lost.gif")
    for batch in frames(10):
        writer.write(batch)
    deadline = time.monotonic() + 5
    while writer.frames_written < 8 and time.monotonic() < deadline:  # the handed-over batch is encoded:
        time.sleep(0.01)  # the worker holds the writer only while it encodes a batch
    time.sleep(0.05)  # ... and lets go of it right after the batch's last frame
    with pytest.warns(ResourceWarning, match=r"lost.gif was never closed: its partial output was deleted"):
        del writer, batch
        gc.collect()
    encoders = [t for t in threading.enumerate() if t.name == "visopt-frames-lost.gif"]
    for thread in encoders:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in encoders)  # the encoder thread ended with its writer
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary part is left
    assert all(t.name != "visopt-frames-lost.gif" for t in threading.enumerate())


# -- a full disk ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fail_after", [0, 2000])
def test_a_full_disk_fails_once_and_leaves_no_partial_file(tmp_path, fail_after):
    (tmp_path / "run.gif").write_bytes(b"previous")
    writer = FrameWriter(tmp_path / "run.gif")
    writer._sink.handle = FullDisk(writer._sink.handle, fail_after)
    with pytest.raises(FrameWriterError, match="No space left on device"):
        for batch in frames(40):
            writer.write(batch)
            time.sleep(0.005)
        writer.close()
    writer.close()  # settled: no second error, no exception from the clean-up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.gif"]
    assert (tmp_path / "run.gif").read_bytes() == b"previous"


def test_abort_on_a_full_disk_cleans_up_without_raising(tmp_path):
    writer = FrameWriter(tmp_path / "run.gif")
    for batch in frames(3):
        writer.write(batch)
    time.sleep(0.5)  # the frames reach the encoder; the handle then cannot flush on close
    writer._sink.handle = FullDisk(writer._sink.handle)
    assert writer.abort() is None
    assert list(tmp_path.iterdir()) == []


def test_abort_of_an_mp4_stops_the_encoder_and_deletes_its_file(tmp_path):
    writer = FrameWriter(tmp_path / "run.mp4")
    for batch in frames(5):
        writer.write(batch)
    writer.abort()
    assert list(tmp_path.iterdir()) == []
    assert writer.close() is None  # an aborted writer publishes nothing afterwards
    assert list(tmp_path.iterdir()) == []


def test_keep_partial_publishes_under_a_partial_name(tmp_path):
    writer = FrameWriter(tmp_path / "run.gif")
    for batch in frames(3):
        writer.write(batch)
    assert writer.abort(keep_partial=True) == tmp_path / "run.partial.gif"
    assert len(imageio.mimread(tmp_path / "run.partial.gif")) == 3
    assert not (tmp_path / "run.gif").exists()


def test_a_folder_or_an_empty_name_is_refused_when_the_writer_is_made(tmp_path):
    (tmp_path / "taken.gif").mkdir()
    with pytest.raises(FrameWriterError, match="is an existing folder"):
        FrameWriter(tmp_path / "taken.gif")
    with pytest.raises(ValueError, match="has no file name"):
        FrameWriter("", format="gif")
