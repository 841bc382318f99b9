"""TAEHV and LightTAE: tiny streaming decoders for Wan2.1 and Wan2.2 latents, for real-time preview.

TAEHV ("Tiny AutoEncoder for Hunyuan Video", madebyollin/taehv, MIT) has a Wan2.1 decoder, ``taew2_1.pth``;
lightx2v's ``lighttaew2_1.pth`` (Hub ``lightx2v/Autoencoders``, Apache-2.0) has the same architecture,
widths and key names, trained by lightx2v. The two differ in the latents they expect:

* ``taehv`` (``taew2_1``) decodes the latents the diffusion model produces, i.e. Wan's *normalised*
  latents, as they are (madebyollin/taehv README: "TAEHV does not use any latent scales / shifts";
  lightx2v ``vae_tiny.py`` ``WanVAE_tiny(need_scaled=False)``, ComfyUI-LightVAE ``nodes.py``: taew2_1 →
  ``need_scaled=False``).
* ``lighttae`` (``lighttaew2_1``) decodes *de-normalised* latents, ``z / (1 / std) + mean`` per channel with
  the Wan2.1 ``latents_mean`` / ``latents_std``, what the Wan VAE itself decodes (lightx2v ``vae_tiny.py``
  ``WanVAE_tiny(need_scaled=True)``; ComfyUI-LightVAE ``nodes.py``: lighttaew2_1 → ``need_scaled=True``;
  lightx2v ``app/gradio_demo.py``: ``need_scaled = "lighttae" in vae_name``).

Architecture (madebyollin/taehv ``taehv.py`` ``TAEHV.__init__``; ModelTC/LightX2V
``lightx2v/models/video_encoders/hf/tae.py`` builds the same; widths ``n = (n0, n1, n2, n3)``, real
``(256, 128, 64, 64)`` in both). The decoder is the ``nn.Sequential`` ``decoder``; its index is part of
every key name (``decoder.<i>.…``):

====  ===========================================  =========================================================
 i    layer                                        parameters
====  ===========================================  =========================================================
 0    clamp ``3 · tanh(z / 3)``                    none
 1    conv 3x3, 16 → n0                            ``decoder.1.weight [n0, 16, 3, 3]``, ``.bias [n0]``
 2    ReLU                                         none
 3-5  MemBlock(n0)                                 ``decoder.<i>.conv.{0,2,4}.{weight,bias}``
 6    nearest upsample x2                          none
 7    TGrow(n0, stride 1)                          ``decoder.7.conv.weight [n0, n0, 1, 1]``
 8    conv 3x3, n0 → n1, no bias                   ``decoder.8.weight [n1, n0, 3, 3]``
 9-11 MemBlock(n1); 12 upsample; 13 TGrow(n1, 2)   ``decoder.13.conv.weight [2·n1, n1, 1, 1]``
 14   conv 3x3, n1 → n2, no bias
15-17 MemBlock(n2); 18 upsample; 19 TGrow(n2, 2)   ``decoder.19.conv.weight [2·n2, n2, 1, 1]``
 20   conv 3x3, n2 → n3, no bias; 21 ReLU
 22   conv 3x3, n3 → 3                             ``decoder.22.weight [3, n3, 3, 3]``, ``.bias [3]``
====  ===========================================  =========================================================

then the output is clamped to [0, 1] (RGB, 0 = black). Spatially 8x (three x2 upsamples); temporally 4x
(two stride-2 TGrows). Rules, all from ``taehv.py``:

* **MemBlock(c)**: ``ReLU(conv(cat([x_t, x_{t-1}], channels)) + x_t)``, ``conv`` = conv 3x3 2c → c, ReLU,
  conv c → c, ReLU, conv c → c (``MemBlock.forward``; the skip is the identity since in = out). ``x_{t-1}``
  is the block's own *input* at the previous time step at that block's frame rate, zeros at the first
  (``apply_model_with_memblocks_sequential_single_step``: ``memory[i] = xt``; the parallel form pads the time
  axis with one zero frame). This one-step memory is the only temporal state.
* **TGrow(c, s)**: a 1x1 conv c → s·c without bias whose output channels ``[k·c, (k+1)·c)`` are the k-th of
  ``s`` consecutive output time steps (``TGrow.forward``: ``reshape(-1, C, H, W)``). Stride 1 is a learned
  1x1 projection, not a no-op.
* **Trim**: a latent frame yields 4 frames; the first ``frames_to_trim = t_upscale - 1 = 3`` frames of a video
  are dropped (``decode_video``: ``x[:, self.frames_to_trim:]``; ``StreamingTAEHV.decode`` skips them), so
  L latent frames give ``4L - 3`` frames, as the Wan VAE.
* **Oversized TGrow weights**: a stored ``decoder.{7,13,19}.conv.weight`` with more output channels than the
  layer has is cut to its *last* rows (``TAEHV.patch_tgrow_layers``, applied by both official loaders).
  NVIDIA's flashdreams ``recipes/taehv`` notes that ``lighttaew2_1.pth`` stores the stride-2 shape
  ``[2·n0, n0, 1, 1]`` at index 7; this loader applies the same rule.

**Wan2.2 (``taew2_2``)**: the same network for the 48-channel, 16x-spatial Wan2.2 latents (Wan2.2-TI2V-5B,
LongLive 2.0), published as ``taew2_2.pth`` by madebyollin/taehv (README: "For Wan 2.2 5B, load the
``taew2_2`` weights") and in ``lightx2v/Autoencoders``. ``taehv.py`` ``TAEHV.__init__`` picks it from the
file name (``"taew2_2" in checkpoint_path`` sets ``patch_size, latent_channels = 2, 48``); the widths
``(256, 128, 64, 64)``, the layers, the memory and the trim are those above. What changes:

* conv 1 reads 48 channels: ``decoder.1.weight [n0, 48, 3, 3]``;
* conv 22 writes ``3 · 2² = 12`` channels, ``decoder.22.weight [12, n3, 3, 3]``, which a pixel shuffle by 2
  (``postprocess_output_frames``: ``F.pixel_shuffle(x, patch_size)``, then the clamp to [0, 1]) turns into
  RGB at twice the size: spatially 16x in all, as the Wan2.2 VAE;
* no latent scale or shift either (README: "TAEHV does not use any latent scales / shifts"): it decodes the
  pipeline's normalised Wan2.2 latents as they are (variant ``"taehv"``).

Here the file cannot say which it is (the official code reads the name); the registry's ``taew2_2`` loader
asks :func:`load_taehv` for the Wan2.2 layout, and a file of the other layout is refused by the strict key
and shape check (``decoder.1.weight`` names the latent channels).

Encoder keys: the official loaders build encoder and decoder and load the file strictly. Only the decoder
is needed here, so :func:`load_taehv` drops every ``encoder.*`` entry unchecked (a decoder-only file loads
too) and checks the ``decoder.*`` entries strictly; any other key is an error.

Files read (for facts; the code here is written for this project, none is taken from them):
madebyollin/taehv ``taehv.py`` (commit 115aaa7e; 1f14a56 for ``taew2_2``) and ``README.md``; ModelTC/LightX2V
``lightx2v/models/video_encoders/hf/tae.py`` and ``hf/wan/vae_tiny.py`` (commits ab443c45, 29c8504c);
ModelTC/ComfyUI-LightVAE ``nodes.py``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, cast, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ModelError
from ..models.keys import natural_key
from .base import StreamingCounts, check_block

__all__ = [
    "TAEHV_WIDTHS",
    "TAEW2_2_PATCH_SIZE",
    "TINY_TAEHV_WIDTHS",
    "StreamingTAEHVDecoder",
    "TAEHVDecoder",
    "Variant",
    "init_random_",
    "load_lighttae_network",
    "load_taehv",
    "load_taehv_network",
    "load_taew2_2_network",
    "make_streaming_decoder",
    "taehv_state_dict",
    "tiny_taehv",
]

log = logging.getLogger(__name__)

Variant = Literal["taehv", "lighttae"]
VARIANTS: tuple[str, ...] = get_args(Variant)

#: Widths ``(n0, n1, n2, n3)`` of the released decoders (``taehv.py``: ``n_f = [256, 128, 64, 64]``; lightx2v
#: ``tae.py`` the same for ``lighttaew2_1``).
TAEHV_WIDTHS: tuple[int, int, int, int] = (256, 128, 64, 64)
#: Widths of the toy decoder for tests.
TINY_TAEHV_WIDTHS: tuple[int, int, int, int] = (8, 8, 4, 4)
#: Width of the official encoder (``taehv.py``: every encoder layer has 64 channels); only to write files.
TAEHV_ENCODER_WIDTH = 64

LATENT_CHANNELS = 16  # Wan2.1 z_dim
WAN22_LATENT_CHANNELS = 48  # Wan2.2 z_dim
#: Pixel-shuffle patch of ``taew2_2`` (``taehv.py``: ``patch_size = 2`` for ``taew2_2``): 8x · 2 = 16x.
TAEW2_2_PATCH_SIZE = 2
IMAGE_CHANNELS = 3
TEMPORAL_UPSCALE = 4  # frames per latent frame: two stride-2 TGrows
FRAMES_TO_TRIM = TEMPORAL_UPSCALE - 1  # taehv.py: frames_to_trim = t_upscale - 1
_TGROW_STRIDES = (1, 2, 2)  # decoder_time_upscale (False, True, True)
_MEMBLOCKS_PER_STAGE = 3


def _conv3x3(n_in: int, n_out: int, *, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, bias=bias)


def _stage_indices(stage: int) -> tuple[list[int], int, int, int]:
    """Indices in ``decoder`` of stage 0, 1 or 2: (MemBlocks, upsample, TGrow, projection conv)."""
    first = 3 + 6 * stage
    return [first, first + 1, first + 2], first + 3, first + 4, first + 5


class _Clamp(nn.Module):
    """Soft clamp of the latent input to (-3, 3): ``3 · tanh(x / 3)`` (``taehv.py`` ``Clamp``)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x / 3) * 3


class MemBlock(nn.Module):
    """Residual block that also sees the previous time step (``taehv.py`` ``MemBlock`` with n_in = n_out).

    Args:
        channels: c, input = output channels.
    """

    def __init__(self, channels: int):
        super().__init__()
        c = channels
        # Indices 0, 2, 4 hold the parameters: keys conv.0.weight, conv.2.weight, conv.4.weight (+ biases).
        self.conv = nn.Sequential(_conv3x3(2 * c, c), nn.ReLU(), _conv3x3(c, c), nn.ReLU(), _conv3x3(c, c))

    def forward(self, x: Tensor, past: Tensor) -> Tensor:
        """``x``, ``past``: ``[N, c, H, W]``, this step's and the previous step's input → ``[N, c, H, W]``."""
        return F.relu(self.conv(torch.cat([x, past], dim=1)) + x)


class TGrow(nn.Module):
    """Temporal upsampling by ``stride`` as one 1x1 conv c → stride·c without bias (``taehv.py`` ``TGrow``).

    Args:
        channels: c.
        stride: output time steps per input time step.
    """

    def __init__(self, channels: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(channels, channels * stride, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """``[N, c, H, W]`` → ``[N, stride · c, H, W]``; channels ``[k·c, (k+1)·c)`` are output step k."""
        return self.conv(x)


class TAEHVDecoder(nn.Module):
    """The TAEHV decoder network (key layout of the official ``TAEHV``, decoder half: every parameter is
    ``decoder.<i>.…`` as in the table of this module's docstring), for Wan2.1 latents (16 channels, patch 1:
    ``taew2_1``) or Wan2.2 latents (48 channels, patch 2: ``taew2_2``).

    Args:
        widths: ``(n0, n1, n2, n3)``, channels of the three stages and of the last conv's input; the released
            decoders use :data:`TAEHV_WIDTHS`, tests :data:`TINY_TAEHV_WIDTHS`.
        variant: ``"taehv"`` (decodes normalised latents) or ``"lighttae"`` (decodes de-normalised latents);
            read by :class:`StreamingTAEHVDecoder`, it does not change the network.
        latent_channels: channels of the latents read by conv 1 (16 Wan2.1, 48 Wan2.2).
        patch_size: p, the pixel-shuffle factor after conv 22, which writes ``3 · p²`` channels (1 Wan2.1,
            2 Wan2.2: ``taehv.py`` ``postprocess_output_frames``).

    Raises:
        ValueError: an unknown variant, not four positive widths, or a non-positive channel count or patch.
    """

    def __init__(
        self,
        widths: Sequence[int] = TAEHV_WIDTHS,
        *,
        variant: Variant = "taehv",
        latent_channels: int = LATENT_CHANNELS,
        patch_size: int = 1,
    ):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f"widths must be four positive channel counts (n0, n1, n2, n3), got {widths}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        if latent_channels < 1 or patch_size < 1:
            raise ValueError(
                f"latent_channels and patch_size must be positive, got {latent_channels}, {patch_size}"
            )
        self.widths: tuple[int, int, int, int] = tuple(widths)  # type: ignore[assignment]
        self.variant: Variant = variant
        self.latent_channels = int(latent_channels)
        self.patch_size = int(patch_size)
        n0, n1, n2, n3 = widths
        layers: list[nn.Module] = [_Clamp(), _conv3x3(self.latent_channels, n0), nn.ReLU()]
        for stage, (c_in, c_out) in enumerate(((n0, n1), (n1, n2), (n2, n3))):
            layers += [MemBlock(c_in) for _ in range(_MEMBLOCKS_PER_STAGE)]
            layers += [nn.Upsample(scale_factor=2), TGrow(c_in, _TGROW_STRIDES[stage])]
            layers.append(_conv3x3(c_in, c_out, bias=False))
        layers += [nn.ReLU(), _conv3x3(n3, IMAGE_CHANNELS * self.patch_size**2)]
        self.decoder = nn.Sequential(*layers)

    def new_memory(self) -> list[Tensor | None]:
        """Empty temporal state for :meth:`decode_latent_frame`: one slot per MemBlock (9), all ``None``."""
        return [None] * (3 * _MEMBLOCKS_PER_STAGE)

    def decode_latent_frame(self, z: Tensor, memory: list[Tensor | None]) -> Tensor:
        """Decode one latent frame, updating ``memory`` in place.

        Args:
            z: ``[B, C, h, w]`` (C = ``latent_channels``), the decoder's input (already (de-)normalised as
                the weights expect), in the parameters' dtype and device.
            memory: from :meth:`new_memory`, carried from the previous latent frame of the same video. Slot
                ``3·s + j`` holds the last input of MemBlock j of stage s (``[B, n_s, 2^s·h, 2^s·w]``).

        Returns:
            ``[B, 4, 3, 8ph, 8pw]`` (p = ``patch_size``): the 4 frames of this latent frame, in time order,
            RGB in [0, 1]. (The caller drops the first 3 frames of a video.) Each stage's time steps are
            processed together as one batch whose size (B, B, 2B) does not depend on how the video is split
            into calls, so decoding block by block gives the same values as decoding the whole video at once.
        """
        d = self.decoder
        b = z.shape[0]
        x = d[2](d[1](d[0](z)))
        steps = 1  # time steps per latent frame at the current stage; x is time-major [steps·B, c, H, W]
        for stage in range(3):
            blocks, up, grow, proj = _stage_indices(stage)
            for j, i in enumerate(blocks):
                slot = _MEMBLOCKS_PER_STAGE * stage + j
                prev = memory[slot]
                if prev is None:
                    prev = torch.zeros_like(x[:b])
                # The input at t-1 for each step t: the carried step, then this frame's steps but the last.
                past = prev if steps == 1 else torch.cat([prev, x[: (steps - 1) * b]])
                # A slice of a multi-step x would keep all of x alive; copy just the last step then.
                memory[slot] = x if steps == 1 else x[(steps - 1) * b :].clone()
                x = d[i](x, past)
            x = d[up](x)
            if stage == 2:
                break
            x = d[grow](x)
            stride = cast(TGrow, d[grow]).stride
            if stride > 1:
                _, sc, hh, ww = x.shape
                c = sc // stride
                # [steps, B, stride, c, H, W] → time-major [steps·stride·B, c, H, W] (step k of t: t·stride+k)
                x = (
                    x.reshape(steps, b, stride, c, hh, ww)
                    .transpose(1, 2)
                    .reshape(steps * stride * b, c, hh, ww)
                )
                steps *= stride
            x = d[proj](x)
        # The last TGrow feeds no MemBlock, so each of its output steps k (weight rows [k·c, (k+1)·c)) goes
        # through the projection and output convs on its own and only the 3-channel frames are put in time
        # order: the stride·c-channel full-resolution tensor and its reordered copy never exist.
        last = cast(TGrow, d[grow])
        weight, stride = last.conv.weight, last.stride
        c = weight.shape[1]
        frames = []
        for k in range(stride):
            y = torch.relu_(d[proj](F.conv2d(x, weight[k * c : (k + 1) * c])))  # d[21] is this ReLU
            rgb = d[22](y)
            if self.patch_size > 1:  # taehv.py postprocess_output_frames: pixel shuffle, then clamp
                rgb = F.pixel_shuffle(rgb, self.patch_size)
            frames.append(rgb.clamp(0.0, 1.0))
        out = torch.stack(frames, dim=1)  # [steps·B, stride, 3, H, W]; step k of t is frame t·stride+k
        _, _, c, hh, ww = out.shape
        return out.view(steps, b, stride, c, hh, ww).transpose(0, 1).reshape(b, steps * stride, c, hh, ww)


def _frames_to_uint8(frames: Tensor) -> Tensor:
    """``[B, T, 3, H, W]`` in [0, 1] → uint8 ``[B, T, H, W, 3]`` on the same device: ``round(x · 255)``
    (half to even) in float32, as ``taehv.py`` ``main`` writes frames; contiguous."""
    x = frames.float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return x.permute(0, 1, 3, 4, 2).contiguous()


class StreamingTAEHVDecoder(StreamingCounts):
    """Decodes latent blocks with a :class:`TAEHVDecoder`, carrying its temporal memory across calls, with the
    contract of :class:`longlive_cli.decoders.wan.StreamingDecoder`: decoding a video block by block gives
    exactly (bit for bit) the frames of one call on all its latents, ``4L - 3`` frames for L latent frames.

    The memory is one tensor per MemBlock (9; the input of its last time step), owned by this object, so
    memory does not grow with video length and other users of the same model do not disturb the stream.

    Args:
        model: the decoder network; its ``variant`` decides the input: ``"taehv"`` decodes the pipeline's
            normalised latents as they are, ``"lighttae"`` first de-normalises them per channel as
            ``z / (1 / std) + mean`` in float32 (the arithmetic of ``decode.StreamingDecoder`` and lightx2v's
            ``WanVAE_tiny.decode``). Its dtype and device are read at each call.
        latents_mean, latents_std: the 16 Wan2.1 latent statistics used by ``"lighttae"``; None: the Wan2.1
            VAE's (diffusers ``AutoencoderKLWan`` defaults, the values lightx2v's ``WanVAE_tiny`` lists).

    Raises:
        ValueError: ``latents_mean`` / ``latents_std`` without 16 entries, or a ``"lighttae"`` model that does
            not read 16 channels (only Wan2.1 statistics are known here).
    """

    def __init__(
        self,
        model: TAEHVDecoder,
        *,
        latents_mean: Sequence[float] | None = None,
        latents_std: Sequence[float] | None = None,
    ):
        from ..models.vae import WAN21_LATENT_MEAN, WAN21_LATENT_STD  # the Wan2.1 latent statistics

        self.model = model
        mean = torch.tensor(WAN21_LATENT_MEAN if latents_mean is None else latents_mean, dtype=torch.float32)
        std = torch.tensor(WAN21_LATENT_STD if latents_std is None else latents_std, dtype=torch.float32)
        if model.variant == "lighttae" and model.latent_channels != LATENT_CHANNELS:
            raise ValueError(
                f"a lighttae decoder reads {LATENT_CHANNELS} channels, got {model.latent_channels}"
            )
        if mean.shape != (LATENT_CHANNELS,) or std.shape != (LATENT_CHANNELS,):
            raise ValueError(
                f"latents_mean/latents_std must have {LATENT_CHANNELS} entries, got {tuple(mean.shape)} and "
                f"{tuple(std.shape)}"
            )
        self._mean = mean.view(1, 1, -1, 1, 1)  # broadcast over [B, F, C, h, w]
        self._inv_std = (1.0 / std).view(1, 1, -1, 1, 1)
        self.reset()

    @property
    def device(self) -> torch.device:
        """The decoder network's device."""
        return next(self.model.parameters()).device

    def reset(self) -> None:
        """Forget the previous video: the next :meth:`decode` starts a new one (its first latent frame decodes
        to a single frame)."""
        self._memory = self.model.new_memory()
        self._to_trim = FRAMES_TO_TRIM
        self._start_video()

    @torch.inference_mode()
    def decode(self, latents: Tensor) -> Tensor:
        """Decode the next block of latent frames of the current video.

        Args:
            latents: ``[B, F, C, h, w]`` (batch, latent frames, channels = the model's ``latent_channels``:
                16 Wan2.1, 48 Wan2.2; height/s, width/s with s = 8 Wan2.1, 16 Wan2.2), the pipeline's
                normalised Wan latents, any float dtype and device; ``F >= 1``.

        Returns:
            uint8 ``[B, T, H, W, 3]`` on CPU (batch, frames, height, width, RGB), ``T = 4F - 3`` on the first
            call after construction/:meth:`reset` and ``4F`` afterwards, ``H = s·h``, ``W = s·w``; values
            ``round(255 · x)`` of the decoder output x in [0, 1]. Only this block's new frames. (The same
            layout as ``StreamingDecoder.decode``.)

        Raises:
            ValueError: ``latents`` is not 5-D, has not the model's channels on axis 2 or no frames, or its
                batch size or latent height/width differ from earlier blocks of the same video (call
                :meth:`reset`).
        """
        b, f, _, h, w = check_block(latents, self.model.latent_channels, self._batch_shape)
        param = next(self.model.parameters())
        device, dtype = param.device, param.dtype
        if self.model.variant == "lighttae":
            z = latents.to(device=device, dtype=torch.float32)
            z = (z / self._inv_std.to(device) + self._mean.to(device)).to(dtype)
        else:
            z = latents.to(device=device, dtype=dtype)

        out = []
        for i in range(f):
            frames = self.model.decode_latent_frame(z[:, i], self._memory)  # [B, 4, 3, H, W]
            if self._to_trim:
                frames = frames[:, self._to_trim :]
                self._to_trim = 0
            self._counted(frames.shape[1], (b, h, w))
            out.append(_frames_to_uint8(frames))  # uint8 on the device; one host copy per call
        return torch.cat(out, dim=1).cpu()


def make_streaming_decoder(
    model: TAEHVDecoder, *, options: object = None, fallbacks: list[str] | None = None
) -> StreamingTAEHVDecoder:
    """The registry's factory (:class:`longlive_cli.registry.DecoderInfo`): a fresh
    :class:`StreamingTAEHVDecoder` around ``model``. The small network runs as it is: no speed option
    applies, so ``options`` and ``fallbacks`` are not read."""
    return StreamingTAEHVDecoder(model)


# ---------------------------------------------------------------------- loading
def _expected_shapes(
    widths: Sequence[int], latent_channels: int, patch_size: int
) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = TAEHVDecoder(widths, latent_channels=latent_channels, patch_size=patch_size)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _infer_widths(sd: dict[str, Tensor]) -> tuple[int, int, int, int]:
    """``(n0, n1, n2, n3)`` from the output channels of decoder convs 1, 8, 14, 20; a width whose key is
    absent or not 4-D is the released one (the comparison that follows then names the bad key)."""
    widths = []
    for key, default in zip(
        ("decoder.1.weight", "decoder.8.weight", "decoder.14.weight", "decoder.20.weight"),
        TAEHV_WIDTHS,
        strict=True,
    ):
        t = sd.get(key)
        widths.append(int(t.shape[0]) if t is not None and t.ndim == 4 and t.shape[0] > 0 else default)
    return tuple(widths)  # type: ignore[return-value]


def _cut_tgrow_weights(sd: dict[str, Tensor], widths: Sequence[int]) -> None:
    """The official ``patch_tgrow_layers`` rule: keep the last rows of an oversized TGrow weight."""
    for stage in range(3):
        key = f"decoder.{_stage_indices(stage)[2]}.conv.weight"
        rows = widths[stage] * _TGROW_STRIDES[stage]
        t = sd.get(key)
        if t is not None and t.ndim == 4 and t.shape[0] > rows:
            sd[key] = t[-rows:].contiguous()


def _first_mismatch(sd: dict[str, Tensor], expected: dict[str, tuple[int, ...]]) -> tuple[str, int]:
    """The first problem in natural key order (``"missing <key>"``, ``"unexpected <key>"``, or ``"<key> has
    shape …"``) and how many keys have one; ``("", 0)`` when the layout fits."""
    problems: dict[str, str] = {}
    for key, shape in expected.items():
        if key not in sd:
            problems[key] = f"missing {key}"
        elif tuple(sd[key].shape) != shape:
            problems[key] = f"{key} has shape {tuple(sd[key].shape)}, expected {shape}"
    for key in sd.keys() - expected.keys():
        problems[key] = f"unexpected {key}"
    if not problems:
        return "", 0
    return problems[min(problems, key=natural_key)], len(problems)


#: ``wan22`` → (latent channels, patch size, latent space, the files that fit) for :func:`load_taehv`.
_LAYOUTS: dict[bool, tuple[int, int, str, str]] = {
    False: (
        LATENT_CHANNELS,
        1,
        "Wan2.1",
        "taew2_1.pth (variant 'taehv') or lighttaew2_1.pth (variant 'lighttae'), or their .safetensors forms",
    ),
    True: (WAN22_LATENT_CHANNELS, TAEW2_2_PATCH_SIZE, "Wan2.2", "taew2_2.pth or its .safetensors form"),
}


def load_taehv(
    path: str | Path,
    *,
    variant: Variant,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    wan22: bool = False,
) -> TAEHVDecoder:
    """Load a TAEHV-family decoder from its official file.

    Args:
        path: ``taew2_1.pth`` (madebyollin/taehv; also in ``lightx2v/Autoencoders``) or ``lighttaew2_1.pth``
            (``lightx2v/Autoencoders``), or the ``.safetensors`` form of either: a flat state dict in the
            official ``TAEHV`` key layout. ``.pth``/``.pt`` are read with ``torch.load(weights_only=True)``,
            memory-mapped when the format allows. ``encoder.*`` entries are ignored (see the module
            docstring); the widths are read from the shapes of ``decoder.{1,8,14,20}.weight``.
        variant: which latents the weights expect: ``"taehv"`` (``taew2_1``: normalised) or ``"lighttae"``
            (``lighttaew2_1``: de-normalised). Both files have the same layout, so the file cannot tell; a
            file name that suggests the other variant is logged as a warning.
        device: where to put the model (None: CPU).
        dtype: parameter dtype (float32 default; bfloat16/float16 for speed on a GPU).
        wan22: the file is ``taew2_2.pth`` (or its ``.safetensors``), the decoder for Wan2.2 latents: 48
            latent channels, pixel-shuffle patch 2 (see the module docstring); only with variant ``"taehv"``.

    Returns:
        :class:`TAEHVDecoder` in eval mode, gradients off, ``.variant`` set.

    Raises:
        ValueError: an unknown ``variant``, or ``wan22`` with variant ``"lighttae"``.
        ModelError: the file is missing, unreadable, needs arbitrary unpickling, is not a flat dict of
            tensors, or its ``decoder.*`` entries do not fit the TAEHV decoder for 16 (48 with ``wan22``)
            latent channels; the
            message names the file and the first mismatched key (missing, unexpected or of the wrong shape)
            in natural key order.
    """
    from ..models.weights import CheckpointError, load_flat_state_dict

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if wan22 and variant != "taehv":
        raise ValueError("the Wan2.2 decoder (taew2_2) is variant 'taehv': it reads normalised latents")
    channels, patch, space, files = _LAYOUTS[wan22]
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"TAEHV decoder file {path}: no such file")
    try:
        raw = load_flat_state_dict(path, "TAEHV decoder file", hint=f"pass {files} (a flat state dict)")
    except CheckpointError as e:
        raise ModelError(str(e)) from e
    _warn_on_name(path, variant)

    sd = {k: v for k, v in raw.items() if not k.startswith("encoder.")}
    widths = _infer_widths(sd)
    _cut_tgrow_weights(sd, widths)
    expected = _expected_shapes(widths, channels, patch)
    first, count = _first_mismatch(sd, expected)
    if count:
        raise ModelError(
            f"{path}: not a TAEHV decoder for {space} latents (official TAEHV key layout, {channels} latent "
            f"channels, widths {widths} read from the file): {first}"
            f"{f' (and {count - 1} more mismatched keys)' if count > 1 else ''}. Pass {files}."
        )
    with torch.device("meta"):
        model = TAEHVDecoder(widths, variant=variant, latent_channels=channels, patch_size=patch)
    model.load_state_dict({k: v.to(dtype) for k, v in sd.items()}, strict=True, assign=True)
    if device is not None:
        model = model.to(device)
    return model.eval().requires_grad_(False)


def _warn_on_name(path: Path, variant: str) -> None:
    name = path.name.lower()
    looks_light = "lighttae" in name
    if (variant == "taehv" and looks_light) or (variant == "lighttae" and "tae" in name and not looks_light):
        log.warning(
            "%s: loaded as variant %r, but the file name suggests the other one; taew2_1 decodes normalised "
            "latents, lighttaew2_1 de-normalised ones; the wrong choice gives washed-out or wrong colours",
            path,
            variant,
        )


# ---------------------------------------------------------------------- tiny models and official files
def init_random_(model: TAEHVDecoder, seed: int) -> TAEHVDecoder:
    """Fill ``model`` with seeded random weights whose frames are mid-grey noise rather than saturated:
    He-normal convs, the last conv of every MemBlock scaled by 0.2 (the residual sums stay bounded), the
    output conv by 0.05 with its bias around 0.5; other biases ``N(0, 0.05²)``. Returns ``model``."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                value = torch.randn(p.shape, generator=g) * 0.05 + (0.5 if name == "decoder.22.bias" else 0.0)
            else:
                fan_in = math.prod(p.shape[1:])
                gain = 0.2 if name.endswith("conv.4.weight") else 0.05 if name == "decoder.22.weight" else 1.0
                value = torch.randn(p.shape, generator=g) * (gain * math.sqrt(2.0 / fan_in))
            p.copy_(value.to(p.dtype))
    return model


def tiny_taehv(seed: int = 0, *, variant: Variant = "taehv", wan22: bool = False) -> TAEHVDecoder:
    """A :data:`TINY_TAEHV_WIDTHS` decoder with seeded random weights (:func:`init_random_`), eval mode, for
    tests and demos; ``wan22``: the ``taew2_2`` layout (48 latent channels, patch 2)."""
    channels, patch, _, _ = _LAYOUTS[wan22]
    model = TAEHVDecoder(TINY_TAEHV_WIDTHS, variant=variant, latent_channels=channels, patch_size=patch)
    return init_random_(model, seed).eval().requires_grad_(False)


def _encoder_shapes(width: int, latent_channels: int, patch_size: int) -> dict[str, tuple[int, ...]]:
    """Official ``TAEHV.encoder`` key → shape (``taehv.py``: conv 3·p² → e (after a pixel unshuffle by p),
    ReLU, then three times [TPool(e, s), strided conv e → e without bias, 3 MemBlock(e)] with s = 2, 2, 1,
    then conv e → C; C, p = 16, 1 for Wan2.1 and 48, 2 for Wan2.2)."""
    e = width
    out: dict[str, tuple[int, ...]] = {
        "encoder.0.weight": (e, IMAGE_CHANNELS * patch_size**2, 3, 3),
        "encoder.0.bias": (e,),
    }
    for stage, stride in enumerate((2, 2, 1)):
        first = 2 + 5 * stage
        out[f"encoder.{first}.conv.weight"] = (e, e * stride, 1, 1)
        out[f"encoder.{first + 1}.weight"] = (e, e, 3, 3)
        for i in range(first + 2, first + 5):  # MemBlock(e): convs 2e → e, e → e, e → e, with biases
            for j, n_in in ((0, 2 * e), (2, e), (4, e)):
                out[f"encoder.{i}.conv.{j}.weight"] = (e, n_in, 3, 3)
                out[f"encoder.{i}.conv.{j}.bias"] = (e,)
    out["encoder.17.weight"] = (latent_channels, e, 3, 3)
    out["encoder.17.bias"] = (latent_channels,)
    return out


def taehv_state_dict(
    model: TAEHVDecoder,
    *,
    encoder_width: int | None = TAEHV_ENCODER_WIDTH,
    first_tgrow_stride: int = 1,
    seed: int = 0,
) -> dict[str, Tensor]:
    """A state dict in the official file layout (``taew2_1.pth`` / ``lighttaew2_1.pth``, or ``taew2_2.pth``
    for a Wan2.2 ``model``) holding ``model``'s decoder weights, for writing test files with ``torch.save``
    or safetensors.

    Args:
        model: the decoder whose weights to write (``decoder.*`` keys, copied).
        encoder_width: also write a random encoder of this width in the official ``encoder.*`` layout
            (seeded by ``seed``), as the released full files have; None: decoder keys only.
        first_tgrow_stride: write ``decoder.7.conv.weight`` with ``first_tgrow_stride · n0`` rows, the model's
            rows last and random rows before them (2 is the stride-2 shape lighttae ships, which the loader
            cuts back).

    Returns:
        ``{key: tensor}``, float32, contiguous, sharing no memory with ``model``.
    """
    g = torch.Generator().manual_seed(seed)
    sd = {k: v.detach().float().clone().contiguous() for k, v in model.state_dict().items()}
    if first_tgrow_stride > 1:
        w = sd["decoder.7.conv.weight"]
        extra = torch.randn((w.shape[0] * (first_tgrow_stride - 1), *w.shape[1:]), generator=g) * 0.1
        sd["decoder.7.conv.weight"] = torch.cat([extra, w]).contiguous()
    if encoder_width is not None:
        for key, shape in _encoder_shapes(encoder_width, model.latent_channels, model.patch_size).items():
            sd[key] = torch.randn(shape, generator=g) * 0.05
    return sd


def load_taehv_network(path: str | Path | None) -> TAEHVDecoder:
    """The registry's loader for ``taehv``: :func:`load_taehv` of ``path`` (``taew2_1.pth``), or
    :func:`tiny_taehv` (seed 0) for ``path`` None."""
    return tiny_taehv(0, variant="taehv") if path is None else load_taehv(path, variant="taehv")


def load_lighttae_network(path: str | Path | None) -> TAEHVDecoder:
    """The registry's loader for ``lighttae``: :func:`load_taehv` of ``path`` (``lighttaew2_1.pth``), or
    :func:`tiny_taehv` (seed 0) for ``path`` None."""
    return tiny_taehv(0, variant="lighttae") if path is None else load_taehv(path, variant="lighttae")


def load_taew2_2_network(path: str | Path | None) -> TAEHVDecoder:
    """The registry's loader for ``taew2_2`` (Wan2.2 latents): :func:`load_taehv` of ``path``
    (``taew2_2.pth``) with ``wan22=True``, or :func:`tiny_taehv` (seed 0, ``wan22=True``) for ``path`` None
    (``tiny-random-2``)."""
    return tiny_taehv(0, wan22=True) if path is None else load_taehv(path, variant="taehv", wan22=True)
