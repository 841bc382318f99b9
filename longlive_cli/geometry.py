"""The model's numbers in one place: frame rate, block size, VAE strides, channels, text length, RoPE table.

A :class:`Geometry` is carried by every model spec (:mod:`longlive_cli.models.spec`); the storyboard's
plan, the sampler, the decoder and the writer read their sizes from it and hard-code none. Torch-free, so
``longlive validate`` plans without loading PyTorch.

Units: ``fps`` in video frames per second; block sizes in latent frames; strides in video frames per
latent frame (temporal) and pixels per latent pixel (spatial); ``native_resolution`` is ``(width,
height)`` in pixels. Sources: Wan2.1 ``wan/configs/shared_config.py`` (16 fps, 512 text tokens), the Wan
VAE (``vae_stride (4, 8, 8)``, ``z_dim 16``), the transformer config (``patch_size (1, 2, 2)``,
``rope_max_seq_len 1024``), LongLive ``configs/longlive_interactive_inference.yaml`` (``num_frame_per_block
3``, 832x480) and the LongLive paper (videos up to 240 s). :func:`relative_rope` gives the geometry of the
same model with LongLive's relative RoPE (``configs/longlive_inference_infinity.yaml``): no table, no trained
length.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

__all__ = ["RELATIVE_MAX_S", "WAN21", "WAN22", "Geometry", "relative_rope", "round_half_up"]

#: The longest video, in seconds, planned for a relative-RoPE model (24 h). The model sets no limit: the
#: temporal RoPE index stays below the window, and memory and time per block do not grow. This bound keeps
#: plans finite (durations beyond float range, noise streams laid out for years of video) and is far past
#: what a disk holds at 832x480; the free-space check before generating is the limit in practice.
RELATIVE_MAX_S = 24 * 3600.0


def round_half_up(x: Fraction) -> int:
    """``x`` rounded to the nearest integer, halves up (``2.5 -> 3``), exactly on the rational value."""
    return int((x + Fraction(1, 2)).__floor__())


@dataclass(frozen=True)
class Geometry:
    """Sizes and rates of a causal Wan2.1-family video model, and the frame arithmetic on them.

    Attributes:
        fps: video frames per second the model generates (16).
        frames_per_block: latent frames generated together (3); prompts switch on block boundaries.
        vae_temporal_stride: video frames per latent frame after the first (4): ``L`` latent frames decode
            to ``4L - 3`` video frames.
        vae_spatial_stride: pixels per latent pixel along height and width (8).
        latent_channels: channels of a latent frame (16).
        patch_size: the transformer's ``(t, h, w)`` patch in latent frames/pixels (``(1, 2, 2)``).
        text_len: text-encoder positions the transformer cross-attends to (512).
        rope_max_latent_frames: entries of the temporal RoPE table (1024, about 255 s at 16 fps), or None
            for a model whose temporal index does not grow with the video (relative RoPE).
        max_trained_s: the longest video, in seconds, the model is made for (LongLive: 240 s); for a
            relative-RoPE model (no table), the planning bound :data:`RELATIVE_MAX_S` (24 h).
        native_resolution: ``(width, height)`` in pixels used when a storyboard names none (832x480).

    Raises:
        ValueError: on construction, for a non-positive size.
    """

    fps: int = 16
    frames_per_block: int = 3
    vae_temporal_stride: int = 4
    vae_spatial_stride: int = 8
    latent_channels: int = 16
    patch_size: tuple[int, int, int] = (1, 2, 2)
    text_len: int = 512
    rope_max_latent_frames: int | None = 1024
    max_trained_s: float = 240.0
    native_resolution: tuple[int, int] = (832, 480)

    def __post_init__(self) -> None:
        for name in ("fps", "frames_per_block", "vae_temporal_stride", "vae_spatial_stride", "text_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")

    @property
    def block_video_frames(self) -> int:
        """Video frames per block in steady state (``4 * 3 = 12``)."""
        return self.vae_temporal_stride * self.frames_per_block

    @property
    def block_s(self) -> float:
        """Seconds of video per block (0.75 s)."""
        return self.block_video_frames / self.fps

    @property
    def pixel_multiple(self) -> int:
        """Width and height must be multiples of this many pixels (VAE stride x patch: 16)."""
        return self.vae_spatial_stride * max(self.patch_size[1], self.patch_size[2])

    @property
    def max_duration_s(self) -> float:
        """The longest storyboard duration, in seconds, this model plans: the trained length, and never
        past the RoPE table (``inf`` with neither limit)."""
        limits = [self.max_trained_s]
        if self.rope_max_latent_frames is not None:
            blocks = self.rope_max_latent_frames // self.frames_per_block
            limits.append(blocks * self.block_video_frames / self.fps)
        return min(limits)

    def latent_frames(self, duration_s: float) -> int:
        """Latent frames ``L = B * round(d * fps / (4 * B))`` (half up) for ``duration_s`` seconds:
        60 s -> 240, 5 s -> 21. Can be 0 for durations under half a block."""
        blocks = round_half_up(Fraction(duration_s) * self.fps / self.block_video_frames)
        return blocks * self.frames_per_block

    def video_frames(self, latent_frames: int) -> int:
        """Video frames decoded from ``latent_frames`` latent frames: ``4L - 3`` (0 for none)."""
        return 0 if latent_frames <= 0 else self.vae_temporal_stride * latent_frames - 3

    def first_video_frame(self, latent_frame: int) -> int:
        """Index of the first video frame that latent frame ``latent_frame`` decodes to (0, 1, 5, 9 ...)."""
        return 0 if latent_frame == 0 else self.vae_temporal_stride * latent_frame - 3

    def latent_index(self, time_s: float) -> int:
        """The latent frame a prompt at ``time_s`` seconds lands on: ``round(t * fps / 4)``, half up."""
        return round_half_up(Fraction(time_s) * self.fps / self.vae_temporal_stride)

    def switch_block(self, latent_index: int) -> int:
        """The first block starting at or after latent frame ``latent_index`` (ceil division): where a prompt
        landing on that latent frame takes effect, as prompts switch only at block starts (40 -> 14)."""
        return -(-latent_index // self.frames_per_block)

    def latent_time_s(self, latent: Fraction | int) -> Fraction:
        """Seconds of video at latent position ``latent`` (``latent * 4 / fps``), exact: the inverse of
        :meth:`latent_index` before its rounding, so times before ``latent_time_s(k + 1/2)`` land on
        latent frame ``k`` or earlier."""
        return Fraction(latent) * self.vae_temporal_stride / self.fps

    def latent_size(self, width: int, height: int) -> tuple[int, int]:
        """``(h, w)`` of a latent frame for a video of ``width`` x ``height`` pixels."""
        return height // self.vae_spatial_stride, width // self.vae_spatial_stride

    def tokens_per_frame(self, width: int, height: int) -> int:
        """Transformer tokens per latent frame at ``width`` x ``height`` pixels (1560 at 832x480)."""
        h, w = self.latent_size(width, height)
        return (h // self.patch_size[1]) * (w // self.patch_size[2])


def relative_rope(geometry: Geometry) -> Geometry:
    """``geometry`` for the same model with relative RoPE: no temporal table (the index is a frame's rank in
    the attention window, docs/design.md "Relative RoPE") and :data:`RELATIVE_MAX_S` as the longest plan."""
    return replace(geometry, rope_max_latent_frames=None, max_trained_s=RELATIVE_MAX_S)


#: Wan2.1-T2V-1.3B as LongLive uses it (every absolute-RoPE preset of LongLive 1.0 and its relatives).
WAN21 = Geometry()

#: Wan2.2-TI2V-5B as LongLive 2.0 uses it (NVlabs/LongLive ``main`` 7860ad9): 24 fps
#: (``wan_5b/configs/wan_ti2v_5B.py`` ``sample_fps``), 8 latent frames per block (``configs/inference.yaml``
#: ``num_frame_per_block: 8``), the Wan2.2 VAE's 16x spatial / 4x temporal strides and 48 latent channels
#: (``wan_5b/modules/vae2_2.py``, ``z_dim 48``), native 1280x704 (``image_or_video_shape [1, 128, 48, 44,
#: 80]``
#: at 16x: 880 tokens per latent frame). The RoPE table is the transformer's (1024 latent frames, about
#: 170 s at 24 fps); the shot offset (8 latent frames per shot) counts against it.
WAN22 = Geometry(
    fps=24,
    frames_per_block=8,
    vae_temporal_stride=4,
    vae_spatial_stride=16,
    latent_channels=48,
    patch_size=(1, 2, 2),
    text_len=512,
    rope_max_latent_frames=1024,
    max_trained_s=float("inf"),
    native_resolution=(1280, 704),
)
