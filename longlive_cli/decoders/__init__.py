"""Decoders: latent blocks in, RGB video frames out, streaming with their own carried state.

A decoder turns each finished block of normalized Wan latents ``[1, F, 16, h, w]`` (batch, latent frames,
channels, height/8, width/8) into the video frames it adds, as uint8 ``[1, T, H, W, 3]`` on the CPU
(``T = 4F - 3`` for the first block of a video, ``4F`` after it), so that decoding a video block by block
equals decoding it at once. The pipeline sees nothing else of it.

Each decoder is declared in :mod:`longlive_cli.registry` (:class:`~longlive_cli.registry.DecoderInfo`: its
factory, its network loader, the latent space it reads, its default weights), and :func:`make_decoder` builds
the one a name declares; a decoder added with :func:`~longlive_cli.registry.register_decoder` or an entry
point in the ``longlive_cli.decoders`` group is used like the built-in ones.

Built in: ``wan`` and ``lightvae``:
:class:`~longlive_cli.decoders.wan.StreamingDecoder` over an ``AutoencoderKLWan`` (the Wan VAE, the default;
LightVAE is its channel-pruned copy, :mod:`~longlive_cli.decoders.lightvae`); ``taehv`` and ``lighttae``
(Wan2.1 latents) and ``taew2_2`` (Wan2.2 latents):
:class:`~longlive_cli.decoders.taehv.StreamingTAEHVDecoder` (a small conv network with temporal memory).
"""

from __future__ import annotations

from typing import Protocol

import torch

from ..registry import DecoderInfo, decoder_info, decoder_names, register_decoder
from ..runtime import RuntimeOptions

__all__ = ["Decoder", "DecoderInfo", "decoder_info", "decoder_names", "make_decoder", "register_decoder"]


class Decoder(Protocol):
    """What the pipeline needs of a decoder (see the module docs for shapes)."""

    @property
    def device(self) -> torch.device:
        """Where the decoder computes (the pipeline orders its work after the block's on CUDA)."""
        ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """The frames ``latents`` add to the video: uint8 ``[1, T, H, W, 3]`` on the CPU."""
        ...

    def reset(self) -> None:
        """Forget the carried state: the next block starts a new video."""
        ...


def make_decoder(
    name: str,
    network: torch.nn.Module,
    *,
    options: RuntimeOptions | None = None,
    fallbacks: list[str] | None = None,
) -> Decoder:
    """A fresh streaming decoder (no carried state) of the decoder ``name`` declares
    (:func:`~longlive_cli.registry.decoder_info`) around its loaded ``network`` (the declaration's network
    loader loads it; :func:`longlive_cli.models.loaders.load_model` calls that).

    ``options``: the speed options (the Wan VAE decoders read ``compile_decoder``; the small TAEHV network
    runs as it is); a speed option that fails is recorded in ``fallbacks``.

    Raises:
        longlive_cli.registry.UnknownComponentError: no decoder of that name.
        longlive_cli.registry.ComponentLoadError: its implementation cannot be imported.
    """
    return decoder_info(name).load()(network, options=options, fallbacks=fallbacks)
