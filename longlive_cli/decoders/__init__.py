"""Fast alternative decoders: latent blocks → uint8 RGB frames, with the contract of
:class:`longlive_cli.decode.StreamingDecoder` (``decode(latents)`` per block, carried state, ``reset()``).

* :mod:`.taehv`: TAEHV (``taew2_1``, madebyollin/taehv) and LightTAE (``lighttaew2_1``, lightx2v), tiny 2D
  conv decoders with a one-step temporal memory, written in this project.
* :mod:`.lightvae`: LightVAE (``lightvaew2_1``, lightx2v), a channel-pruned Wan2.1 VAE loaded as a diffusers
  ``AutoencoderKLWan`` (decoded by :class:`~longlive_cli.decode.StreamingDecoder` unchanged).
"""
