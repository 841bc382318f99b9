"""Streaming VAE decode: latent blocks → uint8 RGB video frames, as the blocks are produced.

The Wan VAE decoder (diffusers ``AutoencoderKLWan``) is causal in time: ``AutoencoderKLWan._decode`` runs
it one latent frame at a time and carries a per-convolution *feature cache* (the last two time steps each
causal 3D convolution has seen) from one frame to the next. :class:`StreamingDecoder` drives the decoder
the same way but keeps that cache alive across calls, so decoding a video block by block gives the same
frames as decoding all its latents at once, while holding only one block (never the whole video) in memory.

Latent layout in this project: ``[B, F, C, h, w]`` (batch, latent frames, channels = ``vae.config.z_dim``
= 16 for Wan2.1, height/8, width/8), in Wan's *normalized* latent space. The VAE's input is the
de-normalized latent ``z / (1 / std) + mean`` per channel (``mean = vae.config.latents_mean``,
``std = vae.config.latents_std``), written as a division by ``1 / std`` as the official Wan/LongLive code and
diffusers' ``WanPipeline`` do; in float32 the VAE input is bit-identical to diffusers' (``z * std + mean`` is
equal in exact arithmetic but differs in the last float32 bit now and then).

The VAE itself is loaded by :mod:`longlive_cli.models.vae`.

With ``RuntimeOptions.compile_decoder`` the one-latent-frame decoder call is ``torch.compile``'d. The feature
cache changes shape over a video's first two latent frames (empty, then one time step, then two) and keeps it
from the third on, so those two run eagerly and every later frame runs one graph per resolution (a test counts
the graphs). The compiled callable is kept per VAE, so a batch of videos compiles once.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d
from torch import Tensor

from ..runtime import RuntimeOptions, fall_back
from .base import StreamingCounts, check_block

__all__ = ["StreamingDecoder", "decode_latents", "load_network", "to_uint8_frames"]


def to_uint8_frames(video: Tensor, *, to_cpu: bool = True) -> Tensor:
    """Map decoder output to displayable frames.

    Args:
        video: decoder output ``[B, 3, T, H, W]`` (batch, RGB, video frames, height, width), nominally in
            [-1, 1]; any float dtype and device.
        to_cpu: copy the result to the CPU (otherwise it stays on ``video``'s device).

    Returns:
        uint8 ``[B, T, H, W, 3]``, contiguous: ``round((clamp(x, -1, 1) + 1) * 127.5)``, computed in
        float32 (round half to even).
    """
    x = video.float().clamp(-1.0, 1.0).add(1.0).mul(127.5).round()
    # Permute and pack on the source device so the device→host copy is one contiguous transfer.
    x = x.to(torch.uint8).permute(0, 2, 3, 4, 1).contiguous()
    return x.cpu() if to_cpu else x


class StreamingDecoder(StreamingCounts):
    """Decodes latent blocks as they are produced, carrying ``AutoencoderKLWan``'s causal feature cache
    across calls, so that decoding blocks one after another equals one ``vae.decode`` of the concatenated
    latents.

    The feature cache is owned by this object (a list with one slot per causal convolution of
    ``vae.decoder``, the same structure ``AutoencoderKLWan`` keeps in ``_feat_map``), not stored on the vae:
    other uses of the same vae in between (``vae.decode``, ``vae.clear_cache()``, a second
    ``StreamingDecoder``) do not disturb a stream in progress. The cache holds at most two time steps per
    convolution, so memory does not grow with video length.

    Spatial tiling (``vae.enable_tiling()``) is not applied here: every latent frame is decoded whole, as
    ``vae.decode`` does without tiling. ``vae.use_slicing`` is irrelevant (the batch is decoded together).

    Args:
        vae: a diffusers ``AutoencoderKLWan``; its dtype and device are used for the decoder input
            (read at each call, so the vae may be moved between videos).
        options: the speed options; this class reads ``compile_decoder``, ``compile_backend`` and ``strict``
            (default: none on).
        fallbacks: the list a failed speed option is recorded in (the model's,
            ``CausalWanTransformer.fallbacks``, so ``longlive bench`` reports it); default: a new list,
            :attr:`fallbacks`.
    """

    def __init__(
        self,
        vae: AutoencoderKLWan,
        *,
        options: RuntimeOptions | None = None,
        fallbacks: list[str] | None = None,
    ):
        self.vae = vae
        self.options = options or RuntimeOptions()
        self.fallbacks = fallbacks if fallbacks is not None else []
        # Same slot count AutoencoderKLWan.clear_cache() allocates for the decoder.
        self._num_slots = sum(isinstance(m, WanCausalConv3d) for m in vae.decoder.modules())
        cfg = vae.config
        self._z_dim = int(cfg.z_dim)
        self._mean = torch.tensor(cfg.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        # Reciprocal in float32 first, then divide by it: the official Wan / diffusers pipeline arithmetic.
        self._inv_std = 1.0 / torch.tensor(cfg.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1)
        if self._mean.shape[1] != self._z_dim or self._inv_std.shape[1] != self._z_dim:
            raise ValueError(
                f"vae.config.latents_mean/latents_std must have z_dim={self._z_dim} entries, got "
                f"{self._mean.shape[1]} and {self._inv_std.shape[1]}"
            )
        self._patch_size = getattr(cfg, "patch_size", None)
        self.reset()

    @property
    def device(self) -> torch.device:
        """The VAE's device."""
        return self.vae.device

    def reset(self) -> None:
        """Forget the previous video: the next :meth:`decode` call starts a new one (its first latent frame
        decodes to a single video frame)."""
        self._feat_cache: list = [None] * self._num_slots
        self._start_video()

    @torch.inference_mode()
    def decode(self, latents: Tensor) -> Tensor:
        """Decode the next block of latent frames of the current video.

        Args:
            latents: ``[B, F, C, h, w]`` (batch, latent frames, channels = ``vae.config.z_dim``, height/8,
                width/8), normalized Wan latents, any float dtype and device; ``F >= 1``.

        Returns:
            uint8 ``[B, T, H, W, 3]`` on CPU (batch, video frames, height, width, RGB), with ``T = 4F - 3``
            for the first call after construction/:meth:`reset` and ``T = 4F`` afterwards, ``H = 8h``,
            ``W = 8w``. Values: decoder output clamped to [-1, 1] and mapped to 0..255 (rounded).
            Only this block's new frames are returned.

        Raises:
            ValueError: ``latents`` is not 5-D, has the wrong channel count or no frames, or its batch size or
                latent height/width differ from earlier blocks of the same video (the feature cache would not
                fit; call :meth:`reset` to start a new video).
        """
        b, f, _, h, w = check_block(latents, self._z_dim, self._batch_shape)

        vae = self.vae
        device, dtype = vae.device, vae.dtype
        z = latents.to(device=device, dtype=torch.float32).permute(0, 2, 1, 3, 4)  # [B, C, F, h, w]
        z = z / self._inv_std.to(device) + self._mean.to(device)
        # post_quant_conv is a 1×1×1 convolution: frame-local, so applying it per block (instead of to the
        # whole video as _decode does) computes the same values.
        x = vae.post_quant_conv(z.to(dtype))

        frames = []
        for i in range(f):
            out = self._decode_frame(x[:, :, i : i + 1])
            if self._patch_size is not None:
                from diffusers.models.autoencoders.autoencoder_kl_wan import unpatchify

                out = unpatchify(out, patch_size=self._patch_size)
            self._counted(out.shape[2], (b, h, w))
            # uint8 per latent frame (at most one frame's float output lives on the device), one
            # device→host copy per block (a copy to the host waits for the device).
            frames.append(to_uint8_frames(out, to_cpu=False))
        return torch.cat(frames, dim=1).cpu()

    def _decode_frame(self, x: Tensor) -> Tensor:
        """``vae.decoder`` on one latent frame ``[B, C, 1, h, w]`` (after ``post_quant_conv``), carrying
        the feature cache: one call with a fresh ``feat_idx`` and ``first_chunk`` only for the video's
        first frame, exactly the calls ``AutoencoderKLWan._decode`` makes. Compiled from the third frame
        on when asked."""
        compiled = self._compiled() if self._latent_frames >= 2 else None
        if compiled is not None:
            try:
                return compiled(x, feat_cache=self._feat_cache, feat_idx=[0], first_chunk=False)
            except Exception as err:  # the cache is written after the graph runs: still as it was
                _COMPILED[self.vae.decoder][self.options.compile_backend] = None
                fall_back(
                    "compile-decoder",
                    err,
                    strict=self.options.strict,
                    record=self.fallbacks,
                    instead="decoding eagerly",
                )
        first_chunk = self._latent_frames == 0
        return self.vae.decoder(x, feat_cache=self._feat_cache, feat_idx=[0], first_chunk=first_chunk)

    def _compiled(self) -> Callable[..., Tensor] | None:
        """The compiled decoder call for this VAE (made once per VAE and backend; None: not asked for, or it
        failed before)."""
        if not self.options.compile_decoder:
            return None
        per_backend, backend = _COMPILED.setdefault(self.vae.decoder, {}), self.options.compile_backend
        if backend not in per_backend:
            decoder = self.vae.decoder
            per_backend[backend] = torch.compile(decoder, backend=backend, dynamic=False, fullgraph=True)
        return per_backend[backend]


#: Compiled decoder calls per VAE decoder module and compile backend (None: it failed; do not retry).
_COMPILED: weakref.WeakKeyDictionary[torch.nn.Module, dict[object, Callable[..., Tensor] | None]] = (
    weakref.WeakKeyDictionary()
)


def decode_latents(vae: AutoencoderKLWan, latents: Tensor) -> Tensor:
    """Decode a whole latent video at once (a fresh :class:`StreamingDecoder`, one call).

    Args:
        vae: diffusers ``AutoencoderKLWan``.
        latents: ``[B, F, C, h, w]`` normalized Wan latents, ``F >= 1``.

    Returns:
        uint8 ``[B, 4F - 3, 8h, 8w, 3]`` on CPU.

    Raises:
        ValueError: as :meth:`StreamingDecoder.decode`.
    """
    return StreamingDecoder(vae).decode(latents)


def load_network(path: str | Path | None) -> AutoencoderKLWan:
    """The Wan2.1 VAE from ``path`` (an original ``Wan2.1_VAE.pth``, a diffusers ``vae`` folder or file;
    :func:`longlive_cli.models.vae.load_vae`), or the ``tiny-random`` model's VAE (``path`` None).

    Raises:
        ModelError / ValueError: the file does not fit (names it and the first mismatched key).
    """
    if path is None:
        from ..models.loaders import build_tiny_random

        return build_tiny_random()[1]
    from ..models.vae import load_vae

    return load_vae(path)
