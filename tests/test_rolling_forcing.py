"""Rolling Forcing's window sampler: hand-checked schedules, key lists and noise order; a naive oracle."""

from __future__ import annotations

import pytest
import torch
from helpers import rel_err

from longlive_cli.models.loaders import build_tiny_random
from longlive_cli.models.rope import apply_rope
from longlive_cli.models.spec import SamplerConfig
from longlive_cli.models.transformer import CausalWanTransformer
from longlive_cli.reference import naive_rolling_forcing
from longlive_cli.runtime import RuntimeOptions, StageTimes
from longlive_cli.samplers import rolling_forcing
from longlive_cli.samplers.base import flow_schedule
from longlive_cli.samplers.rolling_forcing import ROLLING_FORCING, RollingCache, RollingPass, sample_rolling
from longlive_cli.schedule import FixedSchedule


def sample_video_rolling(model, embeds, segments, **kwargs):
    """The sampler on a fixed list of prompts (``segments``: each block's prompt index)."""
    return sample_rolling(model, FixedSchedule(embeds, segments), **kwargs)


H, W = 6, 8  # latent size: 3x4 = 12 tokens per latent frame
TPF = 12
S4 = SamplerConfig(name="rolling-forcing", denoising_steps=(1000, 750, 500, 250))
S5 = ROLLING_FORCING


@pytest.fixture(scope="module")
def model() -> CausalWanTransformer:
    return CausalWanTransformer(build_tiny_random()[0]).eval()


@pytest.fixture(scope="module")
def embeds() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(1, 20, 32, generator=g) for _ in range(3)]


def run(model, embeds, segments, sampler_config=S5, *, seed=7, times=None) -> list[torch.Tensor]:
    blocks = sample_video_rolling(
        model,
        embeds,
        segments,
        latent_height=H,
        latent_width=W,
        seed=seed,
        sampler_config=sampler_config,
        times=times,
    )
    return [b.latents for b in blocks]


class Passes:
    """Spy on every transformer pass: kind, first frame, frames, per-frame step index, key list, prompt."""

    def __init__(self, monkeypatch, sampler_config, *, flow=None):
        self.log: list[dict] = []
        self.cache: RollingCache | None = None
        schedule = flow_schedule(sampler_config)[0]
        original = CausalWanTransformer.forward

        def spy(model, latents, timesteps, prompt, *, start_frame, cache=None, **kw):
            t = timesteps.flatten().tolist() if timesteps.ndim == 2 else [timesteps.item()] * latents.shape[1]
            entry = {
                "kind": "denoise" if cache is None else cache.kind,
                "start": start_frame,
                "frames": latents.shape[1],
                "steps": tuple(-1 if v == 0 else schedule.tolist().index(v) for v in t),
                "keys": None if cache is None else cache.key_frames(),
                "prompt": prompt,
            }
            if isinstance(cache, RollingPass):
                self.cache = cache.cache
                entry["ring_before"] = cache.cache.ring_k.clone()
            out = original(model, latents, timesteps, prompt, start_frame=start_frame, cache=cache, **kw)
            entry["out"] = out.clone()
            if isinstance(cache, RollingPass):
                entry["ring_after"] = cache.cache.ring_k.clone()
            self.log.append(entry)
            return torch.zeros_like(out) if flow == "zero" else out

        monkeypatch.setattr(CausalWanTransformer, "forward", spy)

    def of(self, kind: str) -> list[dict]:
        return [p for p in self.log if p["kind"] == kind]

    def windows(self) -> list[tuple[int, tuple[int, ...]]]:
        """Per denoise pass: (first block, step of each block), the block's 3 frames checked alike."""
        out = []
        for p in self.of("denoise"):
            steps = p["steps"]
            per_block = steps[::3]
            assert steps == tuple(s for s in per_block for _ in range(3))
            out.append((p["start"] // 3, per_block))
        return out


# --- schedule -----------------------------------------------------------------------------------------------


def test_timesteps_are_the_shifted_grid_values():
    t5, s5 = flow_schedule(S5)
    assert torch.allclose(
        t5.double(), torch.tensor([1000, 952.381, 882.353, 769.231, 555.556]).double(), atol=1e-3
    )
    assert torch.allclose(s5.double(), t5.double() / 1000, atol=1e-7)
    t4, _ = flow_schedule(S4)
    assert torch.allclose(t4.double(), torch.tensor([1000, 937.5, 2500 / 3, 625]).double(), atol=1e-4)


# Hand-written: (first block, steps of the window's blocks oldest first) for every window.
WINDOWS = {
    (4, 4): [
        (0, (0,)),
        (0, (1, 0)),
        (0, (2, 1, 0)),
        (0, (3, 2, 1, 0)),
        (1, (3, 2, 1)),
        (2, (3, 2)),
        (3, (3,)),
    ],
    (4, 7): [
        (0, (0,)),
        (0, (1, 0)),
        (0, (2, 1, 0)),
        (0, (3, 2, 1, 0)),
        (1, (3, 2, 1, 0)),
        (2, (3, 2, 1, 0)),
        (3, (3, 2, 1, 0)),
        (4, (3, 2, 1)),
        (5, (3, 2)),
        (6, (3,)),
    ],
    (5, 5): [
        (0, (0,)),
        (0, (1, 0)),
        (0, (2, 1, 0)),
        (0, (3, 2, 1, 0)),
        (0, (4, 3, 2, 1, 0)),
        (1, (4, 3, 2, 1)),
        (2, (4, 3, 2)),
        (3, (4, 3)),
        (4, (4,)),
    ],
    (5, 8): [
        (0, (0,)),
        (0, (1, 0)),
        (0, (2, 1, 0)),
        (0, (3, 2, 1, 0)),
        (0, (4, 3, 2, 1, 0)),
        (1, (4, 3, 2, 1, 0)),
        (2, (4, 3, 2, 1, 0)),
        (3, (4, 3, 2, 1, 0)),
        (4, (4, 3, 2, 1)),
        (5, (4, 3, 2)),
        (6, (4, 3)),
        (7, (4,)),
    ],
}


@pytest.mark.parametrize(("steps", "blocks"), list(WINDOWS))
def test_window_schedule(model, embeds, monkeypatch, steps, blocks):
    sampler_config = S5 if steps == 5 else S4
    spy = Passes(monkeypatch, sampler_config)
    run(model, embeds, [0] * blocks, sampler_config)
    assert spy.windows() == WINDOWS[steps, blocks]
    # A clean pass (t = 0, 3 frames) of each final block follows its last window b+S-1, except the
    # video's last block's; the ramp-up windows 0 .. S-2 have none.
    denoise_at = [j for j, p in enumerate(spy.log) if p["kind"] == "denoise"]
    assert denoise_at[:steps] == list(range(steps))
    for b in range(blocks - 1):
        after = spy.log[denoise_at[b + steps - 1] + 1]
        assert (after["kind"], after["start"], after["steps"]) == ("clean", 3 * b, (-1, -1, -1)), b
    assert len(spy.of("clean")) == blocks - 1
    assert spy.log[-1]["kind"] == "denoise"


def test_pass_counts_per_stage(model, embeds):
    times = StageTimes()
    run(model, embeds, [0] * 8 + [1] * 4, S5, times=times)
    assert times.calls["denoise"] == 12 + 5 - 1  # one pass per window
    assert times.calls["clean"] == 12 - 1  # every final block but the last
    assert times.calls["recache"] == 1
    assert times.calls["prompt"] == 2


# --- key lists ----------------------------------------------------------------------------------------------


def keys(sink_at=None, ring=(), own=()):
    sink = () if sink_at is None else tuple(("sink", i, sink_at + i) for i in range(3))
    return sink + tuple(("ring", f, f) for f in ring) + tuple(("own", f, f) for f in own)


def r(a, b):
    return range(a, b + 1)


def test_key_lists_with_five_steps(model, embeds, monkeypatch):
    spy = Passes(monkeypatch, S5)
    run(model, embeds, [0] * 12, S5)
    denoise = {p["start"]: p["keys"] for p in spy.of("denoise") if p["start"] > 0}
    assert all(p["keys"] is None for p in spy.of("denoise")[:5])  # anchored at block 0: no cache
    assert denoise[3] == keys(0, (), r(3, 17))  # q = 15, W = min(3, 0) = 0: sink at its true frames
    assert denoise[6] == keys(0, r(3, 5), r(6, 20))  # W = 3
    assert denoise[9] == keys(3, r(6, 8), r(9, 23))  # the sink moves along, just before the ring frames
    assert denoise[21] == keys(15, r(18, 20), r(21, 35))
    assert denoise[24] == keys(15, r(18, 23), r(24, 35))  # drain: q = 12, W = 6
    assert denoise[27] == keys(15, r(18, 26), r(27, 35))  # W = 9
    assert denoise[30] == keys(15, r(18, 29), r(30, 35))  # W = 12
    assert denoise[33] == keys(15, r(18, 32), r(33, 35))  # W = 15
    clean = {p["start"]: p["keys"] for p in spy.of("clean")}
    assert clean[0] == keys(None, (), r(0, 2))  # block 0 attends to itself and becomes the sink
    assert clean[3] == keys(0, (), r(3, 5))
    assert clean[18] == keys(0, r(3, 17), r(18, 20))  # [0, 21): the sink at frames 0-2
    assert clean[21] == keys(None, r(3, 20), r(21, 23))  # [3, 24): no sink
    assert clean[30] == keys(None, r(12, 29), r(30, 32))
    assert 33 not in clean  # the last block's clean pass is never read


def test_key_lists_with_four_steps(model, embeds, monkeypatch):
    spy = Passes(monkeypatch, S4)
    run(model, embeds, [0] * 12, S4)
    denoise = {p["start"]: p["keys"] for p in spy.of("denoise") if p["start"] > 0}
    assert denoise[3] == keys(0, (), r(3, 14))  # q = 12, W = min(6, 0)
    assert denoise[6] == keys(0, r(3, 5), r(6, 17))  # W = 3
    assert denoise[9] == keys(0, r(3, 8), r(9, 20))  # W = 6
    assert denoise[12] == keys(3, r(6, 11), r(12, 23))
    assert denoise[24] == keys(15, r(18, 23), r(24, 35))
    assert denoise[27] == keys(15, r(18, 26), r(27, 35))  # drain: q = 9, W = 9
    assert denoise[30] == keys(15, r(18, 29), r(30, 35))  # q = 6, W = 12


def test_the_processor_attends_to_the_planned_keys_at_the_planned_rope_frames(model, embeds, monkeypatch):
    seen = []
    plan, attend = RollingCache.plan_pass, RollingCache.attend_pass

    def spy_plan(cache, p):
        out = plan(cache, p)
        seen.append((p, out, []))
        return out

    def spy_attend(cache, p, layer, pl, k, v, cos, sin):
        keys_, values, mask = attend(cache, p, layer, pl, k, v, cos, sin)
        seen[-1][2].append((keys_.shape[1], values.shape[1], mask))
        return keys_, values, mask

    monkeypatch.setattr(RollingCache, "plan_pass", spy_plan)
    monkeypatch.setattr(RollingCache, "attend_pass", spy_attend)
    run(model, embeds, [0] * 12, S5)
    assert len(seen) == 11 + 11  # 11 cached denoise passes (windows 5-15), 11 clean passes
    for p, pl, layers in seen:
        n = len(p.key_frames()) * TPF
        assert layers == [(n, n, None)] * model.num_layers
        sink = [pos for src, _, pos in p.key_frames() if src == "sink"]
        if sink:
            assert torch.equal(pl.sink_rope[0], model.rope(sink[0], 3, 3, 4)[0]), sink
        else:
            assert pl.sink_rope is None


def test_the_sink_is_kept_without_rope(model, embeds, monkeypatch):
    given = {}
    attend = RollingCache.attend_pass

    def spy(cache, p, layer, plan, k, v, cos, sin):
        if p.kind == "clean" and p.start == 0:
            given[layer] = (k.clone(), v.clone(), cos, sin)
        return attend(cache, p, layer, plan, k, v, cos, sin)

    monkeypatch.setattr(RollingCache, "attend_pass", spy)
    passes = Passes(monkeypatch, S5)
    run(model, embeds, [0] * 6, S5)
    cache = passes.cache
    assert passes.of("clean")[0]["start"] == 0
    for layer, (k, v, cos, sin) in given.items():  # the last write: block 0's final clean pass
        assert torch.equal(cache.sink_k[layer], k)
        assert torch.equal(cache.sink_v[layer], v)
        assert rel_err(apply_rope(k, cos, sin), k) > 1e-2  # RoPE at frames 0-2 is not the identity


# --- noise --------------------------------------------------------------------------------------------------


def test_noise_draw_order_and_shapes(model, embeds, monkeypatch):
    draws = []

    class Recording(rolling_forcing.NoiseStream):
        def initial(self):
            draws.append("initial")
            return super().initial()

        def step(self, shape=None):
            draws.append(shape[0])
            return super().step(shape)

    monkeypatch.setattr(rolling_forcing, "NoiseStream", Recording)
    run(model, embeds, [0] * 5, S4)
    i = "initial"
    assert draws == [
        *(i, 3),  # window 0: block 0 enters; block 0 (step 0) is re-noised with a 3-frame draw
        *(i, 6, 6),  # window 1: blocks 0, 1 re-noised, one 6-frame draw each
        *(i, 9, 9, 9),
        *(i, 12, 12, 12),  # window 3: block 0 is final (step 3), blocks 1-3 re-noised
        *(i, 12, 12, 12),
        *(9, 9),  # drain: no new block
        6,
    ]


def test_noise_stream_against_a_hand_drawn_one(model, embeds, monkeypatch):
    """With a model whose flow is 0 (x0 = x), each block's output is its initial noise re-noised twice
    (S = 3): the slices below follow the official order by hand."""
    sampler_config = SamplerConfig(denoising_steps=(1000, 700, 400))
    Passes(monkeypatch, sampler_config, flow="zero")
    got = run(model, embeds, [0] * 3, sampler_config, seed=5)
    _, (_, s1, s2) = flow_schedule(sampler_config)
    g = torch.Generator().manual_seed(5)
    n = torch.randn(1, 9, 16, H, W, generator=g)  # the whole video's initial noise first
    e = [torch.randn(f, 16, H, W, generator=g).unsqueeze(0) for f in (3, 6, 6, 9, 9, 6)]
    # window 0: block 0 -> e0; window 1: block 0 -> e1, block 1 -> e2; window 2: block 1 -> e3, block 2 -> e4;
    # window 3: block 2 -> e5. Each uses its own frames of the window-sized draw.
    want = [
        (1 - s2) * ((1 - s1) * n[:, 0:3] + s1 * e[0][:, 0:3]) + s2 * e[1][:, 0:3],
        (1 - s2) * ((1 - s1) * n[:, 3:6] + s1 * e[2][:, 3:6]) + s2 * e[3][:, 3:6],
        (1 - s2) * ((1 - s1) * n[:, 6:9] + s1 * e[4][:, 6:9]) + s2 * e[5][:, 3:6],
    ]
    for b in range(3):
        assert torch.equal(got[b], want[b]), b


def test_initial_noise_drawn_block_by_block_is_the_one_shot_draw():
    stream = rolling_forcing.NoiseStream(3, num_blocks=4, block_shape=(1, 3, 16, H, W))
    g = torch.Generator().manual_seed(3)
    assert torch.equal(
        torch.cat([stream.initial() for _ in range(4)], 1), torch.randn(1, 12, 16, H, W, generator=g)
    )
    assert torch.equal(stream.step((9, 16, H, W)), torch.randn(9, 16, H, W, generator=g))


# --- streaming, errors, memory ------------------------------------------------------------------------------


def test_each_block_is_yielded_right_after_its_last_window(model, embeds, monkeypatch):
    spy = Passes(monkeypatch, S4)
    blocks = sample_video_rolling(
        model, embeds, [0] * 7, latent_height=H, latent_width=W, seed=1, sampler_config=S4
    )
    for b, block in enumerate(blocks):
        assert (block.index, block.start_frame) == (b, 3 * b)
        assert len(spy.of("denoise")) == b + 4  # windows 0 .. b+S-1 and not one more
        assert len(spy.of("clean")) == min(b + 1, 6)
        assert spy.log[-1]["kind"] == ("clean" if b < 6 else "denoise")


def test_too_short_a_storyboard_is_refused_at_call_time(model, embeds):
    with pytest.raises(ValueError, match="needs at least 5 blocks"):
        sample_video_rolling(
            model, embeds, [0] * 4, latent_height=H, latent_width=W, seed=1, sampler_config=S5
        )
    with pytest.raises(ValueError, match="needs at least 4 blocks"):
        sample_video_rolling(
            model, embeds, [0] * 3, latent_height=H, latent_width=W, seed=1, sampler_config=S4
        )
    assert len(run(model, embeds, [0] * 4, S4)) == 4


def test_memory_does_not_grow_with_the_video(model, embeds, monkeypatch):
    spy = Passes(monkeypatch, S4)
    sizes = []
    for blocks in (10, 20):
        out = run(model, embeds, [0] * blocks, S4)
        cache = spy.cache
        sizes.append((cache.sink_k.shape, cache.ring_k.shape, cache.recent.shape))
        assert all(b.untyped_storage().nbytes() == b.nbytes for b in out)  # no block keeps a window alive
    assert sizes[0] == sizes[1]
    assert sizes[0][1][2] == 21 * TPF  # the ring: 21 frames
    assert sizes[0][2][1] == 18  # x0 kept for a re-cache: 18 frames


def test_fast_path_options_give_the_same_video(model, embeds):
    fast = CausalWanTransformer(build_tiny_random()[0]).eval()
    fast.configure(
        RuntimeOptions(
            fused_qkv=True, rope_cache=True, static_cache=True, compile=True, compile_backend="aot_eager"
        )
    )
    plain = run(model, embeds, [0] * 6 + [1] * 3, S4)
    got = run(fast, embeds, [0] * 6 + [1] * 3, S4)
    assert fast._compiled_blocks is not None  # compiled for LongLive's KVCache; these passes run eagerly
    assert max(rel_err(a, b) for a, b in zip(got, plain, strict=True)) < 1e-6


def test_frame_positions_place_frames_for_rope(model, embeds):
    prompt = model.encode_prompt(embeds[0])
    x = torch.randn(1, 3, 16, H, W, generator=torch.Generator().manual_seed(4))
    t = torch.tensor([500.0])
    at5 = model(x, t, prompt, start_frame=5)
    assert torch.equal(model(x, t, prompt, start_frame=0, frame_positions=(5, 6, 7)), at5)
    assert rel_err(model(x, t, prompt, start_frame=0, frame_positions=(5, 9, 7)), at5) > 1e-4
    with pytest.raises(ValueError, match="frame_positions"):
        model(x, t, prompt, start_frame=0, frame_positions=(5, 6))


# --- the naive oracle ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler_config", [S5, S4], ids=["S5", "S4"])
def test_streaming_equals_the_naive_oracle(model, embeds, sampler_config):
    blocks = 12  # 36 frames: the ring fills and rolls, the sink moves in every later window
    fast = run(model, embeds, [0] * blocks, sampler_config, seed=3)
    naive = list(
        naive_rolling_forcing(
            model, embeds[0], blocks, latent_height=H, latent_width=W, seed=3, sampler_config=sampler_config
        )
    )
    assert len(naive) == blocks
    for b, (f, n) in enumerate(zip(fast, naive, strict=True)):
        assert rel_err(f, n) < 1e-5, b


def test_the_oracle_comparison_catches_a_misplaced_sink(model, embeds, monkeypatch):
    naive = list(
        naive_rolling_forcing(
            model, embeds[0], 12, latent_height=H, latent_width=W, seed=3, sampler_config=S5
        )
    )
    denoise = RollingCache.denoise

    def sink_at_true_frames(cache, start, num_frames):
        p = denoise(cache, start, num_frames)
        return None if p is None else RollingPass(cache, p.kind, p.start, p.num_frames, 0, p.ring)

    monkeypatch.setattr(RollingCache, "denoise", sink_at_true_frames)
    wrong = run(model, embeds, [0] * 12, S5, seed=3)
    # The sink is at frames 0-2 anyway up to window 6 (blocks 0-1 final by then); later it is not.
    assert all(rel_err(wrong[b], naive[b]) < 1e-5 for b in range(3))
    assert all(rel_err(wrong[b], naive[b]) > 1e-3 for b in range(3, 12))


def test_the_oracle_comparison_catches_a_clean_pass_that_keeps_the_sink(model, embeds, monkeypatch):
    naive = list(
        naive_rolling_forcing(
            model, embeds[0], 12, latent_height=H, latent_width=W, seed=3, sampler_config=S5
        )
    )
    clean = RollingCache.clean

    def always_sink(cache, start, x0):
        p = clean(cache, start, x0)
        return RollingPass(cache, p.kind, p.start, p.num_frames, 0 if start else None, p.ring)

    monkeypatch.setattr(RollingCache, "clean", always_sink)
    wrong = run(model, embeds, [0] * 12, S5, seed=3)
    assert all(rel_err(wrong[b], naive[b]) < 1e-5 for b in range(8))  # block 7's clean pass is the first
    # A small effect on this tiny random model (~7e-5), still far above the oracle test's 1e-5.
    assert max(rel_err(wrong[b], naive[b]) for b in range(8, 12)) > 2e-5


# --- prompt switches ----------------------------------------------------------------------------------------


def test_a_switch_changes_the_video_from_the_switch_blocks_first_window_on(model, embeds, monkeypatch):
    spy = Passes(monkeypatch, S5)
    plain = run(model, embeds, [0] * 12)
    plain_passes = list(spy.log)
    spy.log.clear()
    switched = run(model, embeds, [0] * 9 + [1] * 3)
    # Windows 0-8 and the clean passes of blocks 0-4 (14 passes) are the same; then the re-cache, then
    # window 9 (blocks 5-9), which differs.
    assert [p["kind"] for p in spy.log].index("recache") == 9 + 5
    assert all(torch.equal(a["out"], b["out"]) for a, b in zip(plain_passes[:14], spy.log[:14], strict=True))
    window9 = spy.log[15]
    assert (window9["kind"], window9["start"]) == ("denoise", 15) == (plain_passes[14]["kind"], 15)
    assert rel_err(window9["out"], plain_passes[14]["out"]) > 1e-3
    # Blocks final before window 9 (0-4) are unchanged; the blocks in flight (5-8) and later change.
    assert all(torch.equal(plain[b], switched[b]) for b in range(5))
    assert all(rel_err(switched[b], plain[b]) > 1e-3 for b in range(5, 12))


def test_each_switch_recaches_once_with_its_key_list(model, embeds, monkeypatch):
    spy = Passes(monkeypatch, S5)
    segments = [0] * 7 + [1] * 6 + [2]  # switches at blocks 7 and 13
    out = list(
        sample_video_rolling(
            model, embeds, segments, latent_height=H, latent_width=W, seed=2, sampler_config=S5
        )
    )
    recaches = spy.of("recache")
    assert len(recaches) == 2
    # Block 7 enters window 7 (blocks 3-7, first frame 9): R = min(18, 9 - 3) = 6 frames 3-8, sink before.
    assert (recaches[0]["start"], recaches[0]["frames"]) == (3, 6)
    assert recaches[0]["keys"] == keys(0, (), r(3, 8))
    # Block 13 enters window 13 (blocks 9-13, first frame 27): R = 18 frames 9-26, sink at 6-8.
    assert (recaches[1]["start"], recaches[1]["frames"]) == (9, 18)
    assert recaches[1]["keys"] == keys(6, (), r(9, 26))
    assert recaches[0]["steps"] == (-1,) * 6
    # Each re-cache comes right before the switch window's pass, under the new prompt, which every later
    # pass uses (the in-flight blocks' too); every earlier pass uses the old one.
    contexts = [model.encode_prompt(e).context for e in embeds]
    order = [p["kind"] for p in spy.log]
    for rc, new, old in ((recaches[0], 1, 0), (recaches[1], 2, 1)):
        i = next(j for j, p in enumerate(spy.log) if p is rc)
        assert order[i + 1] == "denoise"
        assert torch.equal(spy.log[i - 1]["prompt"].context, contexts[old])
        assert torch.equal(spy.log[i]["prompt"].context, contexts[new])
        assert torch.equal(spy.log[i + 1]["prompt"].context, contexts[new])
    # The second re-cache rewrites the ring slots of frames 9-26 and leaves those of 6-8 (read no more).
    rc = recaches[1]
    slot_changed = [
        not torch.equal(
            rc["ring_before"][:, :, s * TPF : (s + 1) * TPF], rc["ring_after"][:, :, s * TPF : (s + 1) * TPF]
        )
        for s in range(21)
    ]
    assert [f for f in range(6, 27) if slot_changed[(f - 3) % 21]] == list(range(9, 27))
    assert [b.index for b in out if b.switched] == [7, 13]
    assert [b.segment for b in out] == segments


def test_a_switch_before_the_ring_holds_frames_costs_no_pass(model, embeds, monkeypatch):
    spy = Passes(monkeypatch, S5)
    plain = run(model, embeds, [0] * 8)
    spy.log.clear()
    switched = run(model, embeds, [0] * 5 + [1] * 3)  # block 5 enters window 5 (first frame 3): ring empty
    assert spy.of("recache") == []
    contexts = [model.encode_prompt(e).context for e in embeds]
    first_new = next(i for i, p in enumerate(spy.log) if torch.equal(p["prompt"].context, contexts[1]))
    assert (spy.log[first_new]["kind"], spy.log[first_new]["start"]) == ("denoise", 3)
    assert all(torch.equal(p["prompt"].context, contexts[1]) for p in spy.log[first_new:])
    assert torch.equal(plain[0], switched[0])  # block 0 was final in window 4
    assert all(rel_err(switched[b], plain[b]) > 1e-3 for b in range(1, 8))
