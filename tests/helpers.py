"""Small things several test files share: a two-prompt storyboard and an MP4 frame reader."""

from __future__ import annotations

from pathlib import Path

# 2 s at 64x48 with a prompt switch at 1 s: 3 blocks, one re-cache.
LIGHTHOUSE_STORY = """\
duration: 2s
resolution: 64x48
prompts:
  - {at: 0s, text: a lighthouse at dusk}
  - {at: 1s, text: a lighthouse in a storm}
"""


def mp4_frames(path: str | Path):
    """All frames of an MP4 as uint8 ``[T, H, W, 3]`` (numpy), decoded by imageio-ffmpeg's ffmpeg."""
    import imageio_ffmpeg
    import numpy as np

    reader = imageio_ffmpeg.read_frames(str(path))
    w, h = next(reader)["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])
