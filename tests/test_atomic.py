"""Files appear complete or not at all, with the umask's permissions, and a failure keeps the old file."""

import stat

import pytest

from visopt import _atomic
from visopt._atomic import atomic_write_bytes, publish, temporary_file, temporary_folder


def test_write_replaces_completely_with_umask_permissions(tmp_path, monkeypatch):
    # the umask is read once, at import: reading it means setting it, which other threads would see
    monkeypatch.setattr(_atomic, "_UMASK", 0o027)
    target = tmp_path / "sub" / "manifest.json"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    folder = temporary_folder(tmp_path / "frames")
    publish(folder, tmp_path / "frames")
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "frames").stat().st_mode) == 0o750
    assert sorted(p.name for p in target.parent.iterdir()) == ["manifest.json"]  # no temporary left


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_part(tmp_path):
    target = tmp_path / "run.json"
    atomic_write_bytes(target, b"good")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # fails while writing the temporary file
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
    part = temporary_file(tmp_path / "video.mp4", ".mp4")
    assert part.name.startswith(".video.mp4.") and part.name.endswith(".part.mp4") and part.parent == tmp_path
