"""MP4 writer: round trip through the bundled ffmpeg, atomic finish, refusal/overwrite, clean failure."""

from __future__ import annotations

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from longlive_cli import video
from longlive_cli.video import OutputError, OutputExistsError, VideoWriter, check_output, read_video_info

W, H, FPS = 64, 48, 16


def _frames(t: int, seed: int = 0) -> np.ndarray:
    """Smooth moving gradient (compresses well, still non-trivial): uint8 [t, H, W, 3]."""
    yy, xx = np.mgrid[0:H, 0:W]
    out = np.empty((t, H, W, 3), dtype=np.uint8)
    for i in range(t):
        out[i, ..., 0] = (xx * 4 + 8 * (i + seed)) % 256
        out[i, ..., 1] = (yy * 5) % 256
        out[i, ..., 2] = 128
    return out


def _read_all(path) -> np.ndarray:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, dtype=np.uint8).reshape(h, w, 3) for f in reader])


def _write_video(path, batches, **kwargs):
    with VideoWriter(path, fps=FPS, width=W, height=H, **kwargs) as writer:
        for batch in batches:
            writer.write(batch)
    return writer


def test_round_trip_three_batches(tmp_path, capfd):
    target = tmp_path / "out.mp4"
    writer = VideoWriter(target, fps=FPS, width=W, height=H)
    # Temp file is hidden, in the target folder, and the target does not exist yet.
    assert writer.temp_path.parent == tmp_path and writer.temp_path.name.startswith(".out.mp4.part-")
    assert not target.exists()
    writer.write(_frames(5))
    writer.write(torch.from_numpy(_frames(4, seed=5)))  # torch tensors are accepted too
    writer.write(_frames(4, seed=9))
    writer.write(_frames(0))  # empty batch: no-op
    assert writer.frames_written == 13
    assert writer.close() == target
    assert writer.close() == target  # idempotent

    assert read_video_info(target) == {"frames": 13, "fps": 16.0, "width": W, "height": H}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no .part left
    assert not writer.temp_path.exists()
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # ffmpeg stays quiet


def test_solid_colour_survives(tmp_path):
    colour = np.array([200, 40, 90], dtype=np.uint8)
    frames = np.broadcast_to(colour, (3, H, W, 3)).copy()
    _write_video(tmp_path / "solid.mp4", [frames])
    back = _read_all(tmp_path / "solid.mp4")
    assert back.shape == (3, H, W, 3)
    # yuv420p + limited-range conversion: a few levels of error at most.
    assert np.abs(back.astype(int) - colour.astype(int)).max() <= 6


def test_existing_target_is_refused_and_untouched(tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="--force") as info:
        VideoWriter(target, fps=FPS, width=W, height=H)
    assert str(target) in str(info.value)
    assert isinstance(info.value, OutputError)
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_overwrite_replaces_only_on_close(tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"precious")
    writer = VideoWriter(target, fps=FPS, width=W, height=H, overwrite=True)
    writer.write(_frames(4))
    assert target.read_bytes() == b"precious"  # still the old file while writing
    writer.close()
    assert read_video_info(target)["frames"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_exception_in_with_leaves_nothing(tmp_path):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), VideoWriter(tmp_path / "out.mp4", fps=FPS, width=W, height=H) as writer:  # noqa: PT012
        writer.write(_frames(4))
        raise Boom
    assert list(tmp_path.iterdir()) == []

    # With overwrite, a failed run leaves the old file as it was.
    target = tmp_path / "old.mp4"
    target.write_bytes(b"precious")
    with pytest.raises(Boom), VideoWriter(target, fps=FPS, width=W, height=H, overwrite=True) as writer:  # noqa: PT012
        writer.write(_frames(4))
        raise Boom
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.mp4"]


def test_abort_deletes_temp(tmp_path):
    writer = VideoWriter(tmp_path / "out.mp4", fps=FPS, width=W, height=H)
    writer.write(_frames(2))
    writer.abort()
    writer.abort()  # idempotent
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="aborted"):
        writer.write(_frames(1))


def test_missing_folder(tmp_path):
    missing = tmp_path / "no" / "such"
    with pytest.raises(OutputError, match="does not exist") as info:
        VideoWriter(missing / "out.mp4", fps=FPS, width=W, height=H)
    assert str(missing) in str(info.value)


def test_unwritable_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(video.os, "access", lambda *args, **kwargs: False)  # root may write anywhere
    with pytest.raises(OutputError, match="not writable") as info:
        VideoWriter(tmp_path / "out.mp4", fps=FPS, width=W, height=H)
    assert str(tmp_path) in str(info.value)


def test_check_output_creates_nothing(tmp_path):
    assert check_output(tmp_path / "out.mp4") == tmp_path / "out.mp4"
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "out.mp4").write_bytes(b"x")
    with pytest.raises(OutputExistsError, match="--force"):
        check_output(tmp_path / "out.mp4")
    assert check_output(tmp_path / "out.mp4", overwrite=True).name == "out.mp4"
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "missing" / "out.mp4", overwrite=True)


def test_folder_as_target(tmp_path):
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        VideoWriter(tmp_path / "dir.mp4", fps=FPS, width=W, height=H, overwrite=True)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((H, W, 3), np.uint8),  # one frame without the T axis
        np.zeros((2, H, W + 16, 3), np.uint8),  # wrong width
        np.zeros((2, W, H, 3), np.uint8),  # transposed
        np.zeros((2, H, W, 4), np.uint8),  # RGBA
        np.zeros((2, H, W, 3), np.float32),  # not uint8
    ],
    ids=["3d", "width", "transposed", "rgba", "float"],
)
def test_wrong_frames_are_rejected(tmp_path, bad):
    writer = VideoWriter(tmp_path / "out.mp4", fps=FPS, width=W, height=H)
    try:
        with pytest.raises(ValueError, match="frames must"):
            writer.write(bad)
        assert writer.frames_written == 0
    finally:
        writer.abort()


@pytest.mark.parametrize("size", [(W + 1, H), (W, H - 1), (0, H)])
def test_odd_or_empty_size_is_rejected(tmp_path, size):
    with pytest.raises(ValueError, match="even"):
        VideoWriter(tmp_path / "out.mp4", fps=FPS, width=size[0], height=size[1])
    assert list(tmp_path.iterdir()) == []


def test_close_without_frames(tmp_path):
    writer = VideoWriter(tmp_path / "out.mp4", fps=FPS, width=W, height=H)
    with pytest.raises(OutputError, match="No frames"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "batches",
    [[2, 2], [400]],  # noticed at close (frames fit the pipe buffer) / during write (broken pipe)
    ids=["at-close", "during-write"],
)
def test_ffmpeg_failure_reports_its_message(tmp_path, capfd, batches):
    # libx264 rejects an unknown preset when it opens the encoder, after the first frame arrives.
    with pytest.raises(OutputError, match="invalid preset") as info:
        _write_video(tmp_path / "out.mp4", [_frames(t) for t in batches], preset="no-such-preset")
    assert "out.mp4" in str(info.value)
    assert list(tmp_path.iterdir()) == []
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_read_video_info_missing(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_video_info(tmp_path / "nope.mp4")
