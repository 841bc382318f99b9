"""The causal transformer, the KV cache and the sampler against the reference semantics."""

from __future__ import annotations

import pytest
import torch
from helpers import rel_err

from longlive_cli.models.kv_cache import KVCache
from longlive_cli.models.spec import SamplerConfig
from longlive_cli.models.transformer import CausalWanTransformer
from longlive_cli.reference import block_causal_mask, naive_sample_video
from longlive_cli.samplers.base import NoiseStream, flow_schedule
from longlive_cli.samplers.longlive import recache, sample_video

H, W = 4, 6  # latent size: 2x3 = 6 tokens per latent frame


def run(model, embeds, segments, *, seed=7, sampler_config=SamplerConfig()):
    blocks = sample_video(
        model, embeds, segments, latent_height=H, latent_width=W, seed=seed, sampler_config=sampler_config
    )
    return [b.latents for b in blocks]


# --- KV cache --------------------------------------------------------------------------------------


def test_cache_evicts_oldest_non_sink_frames_first():
    cache = KVCache(num_layers=1, batch_size=1, tokens_per_frame=2, heads=1, head_dim=4)
    for start in (0, 3, 6, 9):
        cache.assign(start, 3)
    assert cache.frames() == tuple(range(12))
    write = cache.assign(12, 3)  # first eviction: frames 3-5 go, the sink stays
    assert cache.frames() == (0, 1, 2, *range(6, 15))
    assert cache.sink() == (0, 1, 2)
    assert write.num_valid == 12
    assert write.frame_slots == (3, 4, 5)  # written over the evicted frames' slots
    cache.assign(15, 3)
    assert cache.frames() == (0, 1, 2, *range(9, 18))


def test_cache_fills_as_a_prefix_and_reads_only_valid_slots():
    cache = KVCache(num_layers=2, batch_size=1, tokens_per_frame=2, heads=1, head_dim=4)
    write = cache.assign(0, 3)
    k = torch.arange(24.0).reshape(1, 6, 1, 4)
    cache.write(1, write, k, -k)
    rk, rv = cache.read(1, write)
    assert rk.shape == (1, 6, 1, 4) and torch.equal(rk, k) and torch.equal(rv, -k)
    assert cache.read(0, write)[0].abs().sum() == 0  # other layers untouched


def test_cache_refuses_more_frames_than_the_window():
    cache = KVCache(num_layers=1, batch_size=1, tokens_per_frame=1, heads=1, head_dim=2)
    cache.assign(0, 3)
    with pytest.raises(ValueError, match="do not fit"):
        cache.assign(3, 10)


def test_cache_memory_does_not_grow_with_frames():
    cache = KVCache(num_layers=1, batch_size=1, tokens_per_frame=2, heads=1, head_dim=4)
    shape = cache.k.shape
    for start in range(0, 300, 3):
        write = cache.assign(start, 3)
        cache.write(0, write, torch.ones(1, 6, 1, 4), torch.ones(1, 6, 1, 4))
    assert cache.k.shape == shape and len(cache.frames()) == 12


# --- schedule and noise ------------------------------------------------------------------------------


def test_warped_schedule_matches_reference_values():
    timesteps, sigmas = flow_schedule(SamplerConfig())
    assert timesteps.dtype == torch.float32
    assert torch.allclose(timesteps.double(), torch.tensor([1000, 937.5, 2500 / 3, 625]).double(), atol=1e-4)
    assert torch.allclose(sigmas.double(), torch.tensor([1, 0.9375, 2.5 / 3, 0.625]).double(), atol=1e-7)


def test_noise_stream_reproduces_one_shot_initial_draw_then_step_draws():
    shape, blocks = (1, 3, 16, H, W), 5
    stream = NoiseStream(11, num_blocks=blocks, block_shape=shape)
    got = torch.cat([stream.initial() for _ in range(blocks)], dim=1)
    g = torch.Generator().manual_seed(11)
    want = torch.randn(1, 3 * blocks, 16, H, W, generator=g)
    assert torch.equal(got, want)
    # Step noise continues the same stream after the whole initial draw, as [3, 16, h, w] draws.
    assert torch.equal(stream.step().view(3, 16, H, W), torch.randn(3, 16, H, W, generator=g))


# --- cached transformer vs naive recomputation ------------------------------------------------------------


def test_cached_sampler_equals_naive_recomputation_block_by_block(model, embeds):
    blocks = 7  # 21 latent frames: eviction starts at block 4 (frame 12)
    cached = run(model, embeds, [0] * blocks)
    naive = list(naive_sample_video(model, embeds[0], blocks, latent_height=H, latent_width=W, seed=7))
    for i, (c, n) in enumerate(zip(cached, naive, strict=True)):
        assert rel_err(c, n) < 1e-5, f"block {i}"
    # The comparison is sharp: a reference with a wider window differs once eviction starts.
    wide = SamplerConfig(local_attn_size=15)
    other = list(
        naive_sample_video(
            model, embeds[0], blocks, latent_height=H, latent_width=W, seed=7, sampler_config=wide
        )
    )
    assert all(torch.equal(other[i], naive[i]) for i in range(4))
    assert all(rel_err(other[i], naive[i]) > 1e-3 for i in range(4, blocks))


def test_block_causal_mask_rows():
    sampler_config = SamplerConfig()
    mask = block_causal_mask(18, 1, sampler_config)
    assert mask[0].tolist() == [True] * 3 + [False] * 15  # block 0 sees itself only
    assert mask[13].tolist() == [True] * 3 + [False] * 3 + [True] * 9 + [False] * 3  # sink + 9 latest


def test_prompt_embedding_trimmed_to_its_tokens_gives_the_padded_keys_and_values(model, embeds):
    # encode_prompts keeps only a prompt's token rows; the transformer pads the rest with zeros, as
    # Wan's 512-row zero-padded embedding has them.
    padded = embeds[0].clone()
    padded[:, 20:] = 0
    full, trimmed = model.encode_prompt(padded), model.encode_prompt(padded[:, :20])
    assert torch.equal(full.context, trimmed.context) and full.context.shape[1] == 512
    assert all(torch.equal(a, b) for i in full.kv for a, b in zip(full.kv[i], trimmed.kv[i], strict=True))
    assert full.context[0, 20:].abs().sum() > 0  # padded rows are projected too (biases), not dropped
    with pytest.raises(ValueError, match="513 token rows"):
        model.encode_prompt(torch.zeros(1, 513, padded.shape[-1]))


def test_uniform_per_frame_timesteps_equal_per_video_timestep(model, embeds):
    prompt = model.encode_prompt(embeds[0])
    x = torch.randn(1, 3, 16, H, W, generator=torch.Generator().manual_seed(3))
    mask = block_causal_mask(3, model.tokens_per_frame(H, W), SamplerConfig())
    a = model(x, torch.tensor([500.0]), prompt, start_frame=6, attn_mask=mask)
    b = model(x, torch.full((1, 3), 500.0), prompt, start_frame=6, attn_mask=mask)
    c = model(x, torch.tensor([[500.0, 500.0, 0.0]]), prompt, start_frame=6, attn_mask=mask)
    assert rel_err(a, b) < 1e-6
    assert rel_err(c, a) > 1e-3


def test_rope_uses_absolute_frame_positions_against_the_cache(model, embeds):
    prompt = model.encode_prompt(embeds[0])
    g = torch.Generator().manual_seed(3)
    first, second = torch.randn(1, 3, 16, H, W, generator=g), torch.randn(1, 3, 16, H, W, generator=g)
    t = torch.tensor([500.0])
    outs = []
    for start in (3, 30):  # the same cache content, the next block placed at two distances
        cache = model.new_cache(H, W, capacity_frames=12, sink_frames=3)
        model(first, t, prompt, start_frame=0, cache=cache)
        outs.append(model(second, t, prompt, start_frame=start, cache=cache))
    assert rel_err(outs[0], outs[1]) > 1e-4
    with pytest.raises(ValueError, match="positional table of 1024"):
        model(second, t, prompt, start_frame=1023)


# --- the sampler ---------------------------------------------------------------------------------------


def test_model_sees_reference_timesteps_and_five_passes_per_block(model, embeds, monkeypatch):
    seen = []
    original = CausalWanTransformer.forward

    def spy(self, latents, timesteps, prompt, **kw):
        seen.append((kw["start_frame"], latents.shape[1], round(timesteps.flatten()[0].item(), 3)))
        return original(self, latents, timesteps, prompt, **kw)

    monkeypatch.setattr(CausalWanTransformer, "forward", spy)
    run(model, embeds, [0, 0, 1])
    block = [1000.0, 937.5, 833.333, 625.0, 0.0]
    assert seen[:5] == [(0, 3, t) for t in block]
    assert seen[5:10] == [(3, 3, t) for t in block]
    assert seen[10] == (0, 6, 0.0)  # re-cache: frames 0-5 under the new prompt at t = 0
    assert seen[11:] == [(6, 3, t) for t in block]


def test_same_seed_same_video_different_seed_different_video(model, embeds):
    a, b, c = run(model, embeds, [0, 0]), run(model, embeds, [0, 0]), run(model, embeds, [0, 0], seed=8)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(rel_err(x, z) > 1e-2 for x, z in zip(a, c, strict=True))


def test_prompt_switch_changes_frames_after_it_and_not_before(model, embeds):
    plain = run(model, embeds, [0] * 6)
    switched = run(model, embeds, [0, 0, 0, 1, 1, 1])
    assert all(torch.equal(plain[i], switched[i]) for i in range(3))
    assert all(rel_err(switched[i], plain[i]) > 1e-3 for i in range(3, 6))


def _cache_before_switch(model, embeds, blocks, sampler_config):
    """Run ``blocks`` blocks of prompt 0 and return (cache, x0 of the last 12 frames)."""
    cache = model.new_cache(
        H, W, capacity_frames=sampler_config.local_attn_size, sink_frames=sampler_config.sink_size
    )
    prompt = model.encode_prompt(embeds[0])
    g = torch.Generator().manual_seed(5)
    recent = torch.zeros(1, 0, 16, H, W)
    for b in range(blocks):
        x0 = torch.randn(1, 3, 16, H, W, generator=g)
        model(x0, torch.zeros(1), prompt, start_frame=3 * b, cache=cache)
        recent = torch.cat([recent, x0], dim=1)[:, -12:]
    return cache, recent


def _slot_changed(before: torch.Tensor, after: torch.Tensor, tpf: int) -> list[bool]:
    return [
        not torch.equal(before[:, :, s * tpf : (s + 1) * tpf], after[:, :, s * tpf : (s + 1) * tpf])
        for s in range(12)
    ]


def test_recache_after_window_filled_keeps_the_sink_with_global_sink(model, embeds):
    sampler_config = SamplerConfig(global_sink=True)
    cache, recent = _cache_before_switch(model, embeds, 6, sampler_config)  # switch at frame 18 > 12
    k_before, slots_before = cache.k.clone(), list(cache.slot_frames)
    recache(model, cache, recent, 18, model.encode_prompt(embeds[1]), sampler_config)
    changed = _slot_changed(k_before, cache.k, model.tokens_per_frame(H, W))
    assert changed == [False] * 3 + [True] * 9  # sink kept, frames 9-17 rewritten
    assert cache.slot_frames == slots_before and cache.sink() == (0, 1, 2)


def test_recache_before_window_filled_rewrites_the_sink(model, embeds):
    results = {}
    for global_sink in (True, False):
        sampler_config = SamplerConfig(global_sink=global_sink)
        cache, recent = _cache_before_switch(model, embeds, 3, sampler_config)  # switch at frame 9 <= 12
        k_before = cache.k.clone()
        recache(model, cache, recent[:, -9:], 9, model.encode_prompt(embeds[1]), sampler_config)
        changed = _slot_changed(k_before, cache.k, model.tokens_per_frame(H, W))
        assert changed[:9] == [True] * 9 and cache.frames() == tuple(range(9))
        results[global_sink] = cache.k[:, :, : 9 * model.tokens_per_frame(H, W)].clone()
    assert torch.equal(results[True], results[False])  # same result either way


def test_recache_without_global_sink_makes_a_new_sink(model, embeds):
    sampler_config = SamplerConfig(global_sink=False)
    cache, recent = _cache_before_switch(model, embeds, 6, sampler_config)
    prompt = model.encode_prompt(embeds[1])
    recache(model, cache, recent, 18, prompt, sampler_config)
    assert cache.sink() == (6, 7, 8) and cache.frames() == tuple(range(6, 18))
    # Equal to one bidirectional pass over frames 6-17 into an empty cache under the new prompt.
    fresh = model.new_cache(H, W, capacity_frames=12, sink_frames=3)
    model(recent, torch.zeros(1), model.encode_prompt(embeds[1]), start_frame=6, cache=fresh)
    assert torch.equal(fresh.k, cache.k) and torch.equal(fresh.v, cache.v)
    # Later evictions keep the new sink.
    cache.assign(18, 3)
    assert cache.sink() == (6, 7, 8) and 9 not in cache.frames()


def test_global_sink_setting_changes_the_video_after_a_late_switch(model, embeds):
    segments = [0] * 6 + [1] * 2
    on = run(model, embeds, segments, sampler_config=SamplerConfig(global_sink=True))
    off = run(model, embeds, segments, sampler_config=SamplerConfig(global_sink=False))
    assert all(torch.equal(on[i], off[i]) for i in range(6))
    assert rel_err(on[6], off[6]) > 1e-4
