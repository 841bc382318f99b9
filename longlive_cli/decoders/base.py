"""What the streaming decoders share: the check of an incoming latent block, the count of what they decoded.

Latents are ``[B, F, C, h, w]`` (batch, latent frames, channels, height/8, width/8).
"""

from __future__ import annotations

import torch

__all__ = ["StreamingCounts", "check_block"]


def check_block(
    latents: torch.Tensor, channels: int, video_shape: tuple[int, int, int] | None
) -> tuple[int, int, int, int, int]:
    """``latents``' shape ``(B, F, C, h, w)`` once it is a block a streaming decoder can take next.

    Args:
        latents: the block, ``[B, F, C, h, w]``.
        channels: the latent channels the decoder reads (axis 2).
        video_shape: ``(B, h, w)`` of the video in progress (None: the block starts a video).

    Raises:
        ValueError: not 5-D, another channel count, no frames, or a batch size or latent height/width other
            than the video's so far (its carried state would not fit; reset the decoder first).
    """
    if latents.ndim != 5:
        raise ValueError(f"latents must be [B, F, C, h, w], got shape {tuple(latents.shape)}")
    b, f, c, h, w = latents.shape
    if c != channels:
        raise ValueError(f"latents must have {channels} channels on axis 2, got shape {tuple(latents.shape)}")
    if f == 0:
        raise ValueError("latents has no frames (F = 0)")
    if video_shape is not None and video_shape != (b, h, w):
        raise ValueError(
            f"block shape (B, h, w) = {(b, h, w)} differs from this video's {video_shape}; "
            "call reset() before decoding a new video"
        )
    return b, f, c, h, w


class StreamingCounts:
    """The video in progress of a streaming decoder: latent and video frames decoded since the last
    :meth:`_start_video`, and its ``(B, h, w)`` (which every later block must have: :func:`check_block`)."""

    _latent_frames: int
    _video_frames: int
    _batch_shape: tuple[int, int, int] | None

    def _start_video(self) -> None:
        self._latent_frames = 0
        self._video_frames = 0
        self._batch_shape = None

    def _counted(self, video_frames: int, batch_shape: tuple[int, int, int]) -> None:
        """One latent frame decoded to ``video_frames`` frames of a video of ``batch_shape``."""
        self._latent_frames += 1
        self._video_frames += video_frames
        self._batch_shape = batch_shape

    @property
    def latent_frames_decoded(self) -> int:
        """Latent frames decoded since the last reset (or construction)."""
        return self._latent_frames

    @property
    def video_frames_decoded(self) -> int:
        """Video frames returned since the last reset (``4L - 3`` after ``L >= 1`` latent frames)."""
        return self._video_frames
