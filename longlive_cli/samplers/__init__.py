"""Samplers: given the causal model, the prompt schedule and one seed, yield finished latent blocks.

LongLive's block sampler is :func:`longlive_cli.sampler.sample_video`; Rolling Forcing's window sampler is
:func:`longlive_cli.samplers.rolling_forcing.sample_video_rolling`. Both take the same arguments and yield
:class:`longlive_cli.sampler.SampledBlock` in block order.
"""
