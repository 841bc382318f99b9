"""Relative RoPE (``rope: relative``): the rank rule, its oracles, switches, the length limit, the parity
command.

The rule (docs/design.md "Relative RoPE reference semantics"): keys are cached without RoPE; in every pass a
frame's temporal RoPE index is its rank among the cached frames it attends to (sink first, then the window
in frame order), queries included. Checked against two oracles in :mod:`longlive_cli.reference`: explicit
key lists at rank positions through the uncached transformer (no cache at all, a few blocks), and the
official code's shifting buffer (linear cost, past the 1024-frame table).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import WanTransformer3DModel
from helpers import (
    CFG,
    LAYOUT,
    LINEARS,
    peft_format,
    random_lora,
    random_wan,
    rel_err,
    save_official,
    write_tiny_base,
)
from typer.testing import CliRunner

from longlive_cli.cli import app
from longlive_cli.errors import EXIT_BAD_INPUT, InputError
from longlive_cli.geometry import RELATIVE_MAX_S, WAN21
from longlive_cli.latents import read_latents
from longlive_cli.models.kv_cache import RelativeKVCache
from longlive_cli.models.loaders import tiny_transformer_config
from longlive_cli.models.spec import (
    INFINITE_MODEL,
    PRESETS,
    ModelUnavailableError,
    SamplerConfig,
    components,
    load_spec,
    resolve_spec,
    with_rope,
)
from longlive_cli.models.transformer import CausalWanTransformer
from longlive_cli.models.umt5 import TextEncoder
from longlive_cli.reference import naive_relative_video, naive_sample_video, shifting_relative_video
from longlive_cli.samplers.longlive import recache, sample_video
from longlive_cli.storyboard import StoryboardError, load_storyboard, make_plan, parse_storyboard
from longlive_cli.text import encode_prompts

H, W = 4, 6  # latent size: 2x3 = 6 tokens per latent frame
REL = SamplerConfig(rope="relative")


@pytest.fixture
def one_thread():
    """One intra-op thread for the long runs: on a shared 2-core machine two threads contend badly."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run(model, embeds, segments, sampler_config=REL, *, seed=7, h=H, w=W) -> list[torch.Tensor]:
    blocks = sample_video(
        model, embeds, segments, latent_height=h, latent_width=w, seed=seed, sampler_config=sampler_config
    )
    return [b.latents for b in blocks]


# --- the rank rule ---------------------------------------------------------------------------------------


def test_the_first_twelve_frames_equal_absolute_rope_bit_for_bit(model, embeds):
    absolute, relative = run(model, embeds, [0] * 6, SamplerConfig()), run(model, embeds, [0] * 6)
    assert all(torch.equal(a, r) for a, r in zip(absolute[:4], relative[:4], strict=True))  # frames 0-11
    assert all(rel_err(r, a) > 1e-4 for a, r in zip(absolute[4:], relative[4:], strict=True))


def _relative_cache(model: CausalWanTransformer, **kw) -> RelativeKVCache:
    cache = model.new_cache(H, W, capacity_frames=12, sink_frames=3, rope="relative", **kw)
    assert isinstance(cache, RelativeKVCache)
    return cache


def test_ranks_come_from_frame_numbers_not_ring_slots(model):
    cache = _relative_cache(model)
    for start in (0, 3, 6, 9):
        assert cache.assign(start, 3).query_positions == (start, start + 1, start + 2)  # ranks = frames
    write = cache.assign(12, 3)  # frames 3-5 evicted; 12-14 written into their slots
    assert cache.slot_frames == [0, 1, 2, 12, 13, 14, 6, 7, 8, 9, 10, 11]
    assert write.query_positions == (9, 10, 11)
    # The keys' tables follow the slots: slot 3 holds frame 12, at rank 9; slot 6 holds frame 6, at rank 3.
    tpf = cache.tokens_per_frame
    slot_ranks = [0, 1, 2, 9, 10, 11, 3, 4, 5, 6, 7, 8]
    cos, sin = model.rope_at(tuple(slot_ranks), H // 2, W // 2)
    assert write.key_cos is not None and write.key_cos.shape == (1, 12 * tpf, 1, model.head_dim)
    assert torch.equal(write.key_cos, cos) and torch.equal(write.key_sin, sin)
    for start in range(15, 3 * 400, 3):
        write = cache.assign(start, 3)
        assert write.query_positions == (9, 10, 11)
    assert sorted(cache.ranks().values()) == list(range(12))  # ranks 0-11 however late


def test_frames_past_the_table_attend_with_ranks(model, embeds):
    prompt = model.encode_prompt(embeds[0])
    g = torch.Generator().manual_seed(2)
    cache = _relative_cache(model)
    for start in range(1008, 1027, 3):  # blocks at latent frames 1008 .. 1028, past the 1024-frame table
        x = torch.randn(1, 3, 16, H, W, generator=g)
        out = model(x, torch.tensor([500.0]), prompt, start_frame=start, cache=cache)
        assert torch.isfinite(out).all()
    assert cache.frames() == (1008, 1009, 1010, *range(1020, 1029))  # the first frames became the sink
    assert cache.assign(1026, 3).query_positions == (9, 10, 11)
    with pytest.raises(ValueError, match="positional table of 1024"):  # absolute RoPE stops there
        model(
            x,
            torch.tensor([500.0]),
            prompt,
            start_frame=1023,
            cache=model.new_cache(H, W, capacity_frames=12, sink_frames=3),
        )


def test_rope_at_reads_the_table_and_extends_it_with_its_formula(model):
    hp, wp = H // 2, W // 2
    inside = tuple(range(1024))
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.rope_at(inside, hp, wp), model.rope(0, 1024, hp, wp), strict=True)
    )
    # Past the table: the same values a longer table holds (the formula of diffusers' WanRotaryPosEmbed).
    longer = CausalWanTransformer(
        WanTransformer3DModel(**{**tiny_transformer_config(), "rope_max_seq_len": 2048})
    )
    positions = (0, 5, 1023, 1024, 1025, 2047)
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.rope_at(positions, hp, wp), longer.rope_at(positions, hp, wp), strict=True)
    )
    # Negative positions (the naive oracle shifts copies below 0): cos is even, sin odd.
    (c_neg, s_neg), (c_pos, s_pos) = model.rope_at((-7,), hp, wp), model.rope_at((7,), hp, wp)
    t = model.wan.rope.t_dim
    assert torch.equal(c_neg, c_pos) and torch.equal(s_neg[..., :t], -s_pos[..., :t])


# --- against the oracles ------------------------------------------------------------------------------------


def test_fast_sampler_equals_the_rank_oracle_over_evictions(model, embeds):
    blocks = 8  # 24 latent frames: evictions from block 4 on
    fast = run(model, embeds, [0] * blocks)
    naive = list(naive_relative_video(model, embeds[0], blocks, latent_height=H, latent_width=W, seed=7))
    shifting = list(
        shifting_relative_video(model, embeds[0], blocks, latent_height=H, latent_width=W, seed=7)
    )
    for i in range(blocks):
        assert rel_err(fast[i], naive[i]) < 1e-5, i
        assert rel_err(shifting[i], naive[i]) < 1e-5, i
    # The comparison is sharp: absolute RoPE's oracle agrees only while ranks equal frames.
    absolute = list(naive_sample_video(model, embeds[0], blocks, latent_height=H, latent_width=W, seed=7))
    assert all(rel_err(absolute[i], naive[i]) < 1e-5 for i in range(4))
    assert all(rel_err(absolute[i], naive[i]) > 1e-4 for i in range(4, blocks))


def test_static_cache_gives_the_same_relative_video(model, embeds):
    from longlive_cli.runtime import RuntimeOptions

    plain = run(model, embeds, [0] * 6)
    try:
        model.configure(RuntimeOptions(static_cache=True, rope_cache=True))
        static = run(model, embeds, [0] * 6)
    finally:
        model.configure(RuntimeOptions())
    assert all(rel_err(s, p) < 1e-5 for s, p in zip(static, plain, strict=True))


# --- prompt switches -----------------------------------------------------------------------------------


def test_a_switch_before_twelve_frames_equals_absolute_rope(model, embeds):
    segments = [0, 0, 1, 1]  # re-cache of frames 0-5 at block 2: ranks are frames
    assert all(
        torch.equal(a, r)
        for a, r in zip(
            run(model, embeds, segments, SamplerConfig()), run(model, embeds, segments), strict=True
        )
    )


def test_a_switch_changes_frames_after_it_and_not_before(model, embeds):
    plain, switched = run(model, embeds, [0] * 7), run(model, embeds, [0] * 5 + [1] * 2)
    assert all(torch.equal(plain[i], switched[i]) for i in range(5))
    assert all(rel_err(switched[i], plain[i]) > 1e-3 for i in range(5, 7))


def _filled(model, embeds, blocks, sampler_config):
    cache = _relative_cache(model)
    prompt = model.encode_prompt(embeds[0])
    g = torch.Generator().manual_seed(5)
    recent = torch.zeros(1, 0, 16, H, W)
    for b in range(blocks):
        x0 = torch.randn(1, 3, 16, H, W, generator=g)
        model(x0, torch.zeros(1), prompt, start_frame=3 * b, cache=cache)
        recent = torch.cat([recent, x0], dim=1)[:, -12:]
    return cache, recent


def test_recache_with_global_sink_stores_unrotated_keys_at_ranks(model, embeds, monkeypatch):
    cache, recent = _filled(model, embeds, 6, REL)  # frames 0-2 and 9-17 cached; switch at frame 18
    k_before, slots = cache.k.clone(), list(cache.slot_frames)
    plans = []
    assign = RelativeKVCache.assign
    monkeypatch.setattr(
        RelativeKVCache, "assign", lambda self, s, n: plans.append(assign(self, s, n)) or plans[-1]
    )
    recache(model, cache, recent, 18, model.encode_prompt(embeds[1]), REL)
    assert plans[0].query_positions == tuple(range(3, 12))  # frames 9-17 re-encoded at ranks 3-11
    tpf = cache.tokens_per_frame
    assert torch.equal(cache.k[:, :, : 3 * tpf], k_before[:, :, : 3 * tpf])  # the sink keeps its keys
    assert all(
        not torch.equal(cache.k[:, :, s * tpf : (s + 1) * tpf], k_before[:, :, s * tpf : (s + 1) * tpf])
        for s in range(3, 12)
    )
    assert cache.slot_frames == slots
    # Stored unrotated: the next block's pass rotates them to ranks 0-8 (its own frames at 9-11).
    assert cache.assign(18, 3).query_positions == (9, 10, 11)


def test_recache_without_global_sink_is_a_fresh_cache_at_ranks_zero_to_eleven(model, embeds):
    sampler_config = SamplerConfig(rope="relative", global_sink=False)
    cache, recent = _filled(model, embeds, 6, sampler_config)
    recache(model, cache, recent, 18, model.encode_prompt(embeds[1]), sampler_config)
    assert cache.sink() == (6, 7, 8) and cache.ranks() == {f: f - 6 for f in range(6, 18)}
    fresh = _relative_cache(model)
    model(recent, torch.zeros(1), model.encode_prompt(embeds[1]), start_frame=6, cache=fresh)
    assert torch.equal(fresh.k, cache.k) and torch.equal(fresh.v, cache.v)
    # The same keys and values as absolute RoPE's cache of frames 0-11 holds, before rotation: a fresh cache
    # starting at frame 0 ranks frames as absolute RoPE numbers them.
    zero = _relative_cache(model)
    model(recent, torch.zeros(1), model.encode_prompt(embeds[1]), start_frame=0, cache=zero)
    assert torch.equal(zero.k, cache.k)


# --- the model spec, the preset and the length limit ----------------------------------------------------


def test_infinite_preset_is_the_default_release_with_relative_rope():
    base, infinite = PRESETS["longlive-1.3b"], PRESETS[INFINITE_MODEL]
    assert infinite.sampler.rope == "relative" and base.sampler.rope == "absolute"
    assert components(infinite) == components(base)  # the same files
    assert (
        infinite.geometry.rope_max_latent_frames is None
        and infinite.geometry.max_duration_s == RELATIVE_MAX_S
    )
    assert base.geometry.max_duration_s == 240
    assert with_rope(infinite, "absolute").geometry == base.geometry
    assert resolve_spec("tiny-random", "relative").geometry.rope_max_latent_frames is None


def test_spec_files_take_a_rope_key(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("base: somewhere\nrope: relative\n")
    assert (
        load_spec(path).sampler.rope == "relative" and load_spec(path).geometry.rope_max_latent_frames is None
    )
    path.write_text("base: somewhere\nrope: spiral\n")
    with pytest.raises(ModelUnavailableError, match="rope 'spiral' is not one of absolute, relative"):
        load_spec(path)
    path.write_text("base: somewhere\nrope: relative\nsampler: rolling-forcing\n")
    with pytest.raises(ModelUnavailableError, match="works with the longlive sampler"):
        load_spec(path)
    path.write_text("base: somewhere\nsampler: rolling-forcing\n")
    with pytest.raises(InputError, match="--rope relative"):
        resolve_spec(str(path), "relative")


LONG = "duration: 256.5s\nprompts: [{at: 0s, text: a long road}]\n"


def test_past_255_s_plans_with_relative_rope_and_is_refused_with_absolute():
    infinite = PRESETS[INFINITE_MODEL].geometry
    plan = make_plan(parse_storyboard(LONG, geometry=infinite), infinite)
    assert plan.num_latent_frames == 1026 and plan.num_blocks == 342
    with pytest.raises(StoryboardError) as err:
        make_plan(parse_storyboard(LONG), WAN21)
    message = str(err.value)
    assert (
        "longer than the maximum of 240s" in message
        and "positional table covers 1024 latent frames" in message
    )
    assert "--model longlive-1.3b-infinite" in message and "Split the story" in message
    hour = "duration: 1h\nprompts: [{at: 0, text: a}]\n"
    assert make_plan(parse_storyboard(hour, geometry=infinite), infinite).num_latent_frames == 14400
    with pytest.raises(StoryboardError, match="With relative RoPE the model sets no limit"):
        parse_storyboard("duration: 25h\nprompts: [{at: 0, text: a}]\n", geometry=infinite)


def test_validate_names_the_way_out_and_accepts_it(tmp_path):
    story = tmp_path / "long.yaml"
    story.write_text(LONG)
    refused = CliRunner().invoke(app, ["validate", str(story)])
    assert refused.exit_code == EXIT_BAD_INPUT and "--model longlive-1.3b-infinite" in refused.stderr
    for args in (["--model", INFINITE_MODEL], ["--rope", "relative"]):
        ok = CliRunner().invoke(app, ["validate", str(story), *args])
        assert ok.exit_code == 0, ok.output
        assert "1026 latent frames, 342 blocks" in ok.stdout


# --- the parity command, on a tiny release in the official formats ----------------------------------------


RANK, ALPHA = 4, 8.0


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("infinity")
    write_tiny_base(root / "base")
    gen = {k: 0.2 * v for k, v in random_wan(1).items()}
    save_official(root / "longlive_base.pt", gen, gen)
    modules = [f"blocks.{i}.{n}" for i in range(2) for n in LINEARS]
    lora = {m: (0.2 * a, 0.2 * b) for m, (a, b) in random_lora(modules, RANK, 5).items()}
    torch.save({"generator_lora": peft_format(lora)}, root / "lora.pt")
    weights = dict(gen)
    for m, (a, b) in lora.items():
        weights[f"{m}.weight"] = weights[f"{m}.weight"] + (ALPHA / RANK) * (b @ a)
    torch.save({LAYOUT[k][1]: v for k, v in weights.items()}, root / "truth.pt")
    spec = (
        "base: base\ngenerator: longlive_base.pt\nlora: lora.pt\n"
        f"lora_rank: {RANK}\nlora_alpha: {ALPHA}\nrope: relative\n"
    )
    (root / "spec.yaml").write_text(spec)
    return root


def parity_command(release: Path, story: str, tmp_path: Path, seed: int = 5):
    board = tmp_path / "story.yaml"
    board.write_text(story)
    lat = tmp_path / "out.safetensors"
    args = ["generate", str(board), "-o", str(tmp_path / "out.mp4"), "--model", str(release / "spec.yaml")]
    args += ["--device", "cpu", "--dtype", "float32", "--seed", str(seed), "--save-latents", str(lat), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    infinite = PRESETS[INFINITE_MODEL].geometry
    return read_latents(lat)[0], make_plan(load_storyboard(board, geometry=infinite), infinite)


def by_hand(release: Path, plan):
    """The merged weights renamed by hand, and the prompt embeddings."""
    wan = WanTransformer3DModel(**CFG)
    wan.load_state_dict(torch.load(release / "truth.pt"), strict=True)
    embeds = encode_prompts(TextEncoder.from_pretrained(release / "base"), [s.text for s in plan.segments])
    return CausalWanTransformer(wan.eval()).requires_grad_(False), embeds


def test_parity_command_reproduces_relative_rope_over_evictions(release, tmp_path):
    story = "duration: 6s\nresolution: 32x48\nprompts: [{at: 0s, text: a lighthouse at dusk}]\n"
    got, plan = parity_command(release, story, tmp_path)
    model, embeds = by_hand(release, plan)
    expected = torch.cat(
        list(
            naive_relative_video(model, embeds[0], plan.num_blocks, latent_height=6, latent_width=4, seed=5)
        ),
        dim=1,
    )
    assert got.shape == expected.shape == (1, 24, 16, 6, 4)
    assert rel_err(got, expected) < 1e-4
    absolute = torch.cat(
        list(naive_sample_video(model, embeds[0], plan.num_blocks, latent_height=6, latent_width=4, seed=5)),
        dim=1,
    )
    assert rel_err(got, absolute) > 1e-3


def test_parity_command_past_the_table(release, tmp_path, one_thread):
    story = "duration: 256.5s\nresolution: 16x16\nprompts: [{at: 0s, text: a long road at night}]\n"
    got, plan = parity_command(release, story, tmp_path, seed=9)
    assert got.shape == (1, 1026, 16, 2, 2)
    model, embeds = by_hand(release, plan)
    expected = torch.cat(
        list(shifting_relative_video(model, embeds[0], 342, latent_height=2, latent_width=2, seed=9)), dim=1
    )
    assert rel_err(got, expected) < 1e-4
    assert rel_err(got[:, -3:], expected[:, -3:]) < 1e-4  # the blocks past frame 1024 too


@pytest.mark.parametrize("options", [{}, {"static_cache": True, "rope_cache": True, "fused_qkv": True}])
def test_relative_rope_and_transitions_never_read_the_device_back(options):
    """On the meta device any host read raises: relative RoPE's ranks and tables, a transition's blends and
    their re-caches are all decided on the host."""
    import copy

    from longlive_cli.runtime import RuntimeOptions
    from longlive_cli.samplers.longlive import sample_longlive
    from longlive_cli.schedule import FixedSchedule

    torch.manual_seed(0)
    wan = WanTransformer3DModel(**tiny_transformer_config()).eval().requires_grad_(False)
    model = CausalWanTransformer(copy.deepcopy(wan).to("meta")).configure(RuntimeOptions(**options))
    g = torch.Generator().manual_seed(1)
    embeds = [torch.randn(1, 8, 32, generator=g) for _ in range(2)]
    schedule = FixedSchedule(embeds, [0] * 5 + [1] * 3, transitions=[(0, "linear"), (2, "slerp")])
    sampler_config = SamplerConfig(rope="relative", transition_recache="every")
    out = list(
        sample_longlive(
            model, schedule, latent_height=H, latent_width=W, seed=3, sampler_config=sampler_config
        )
    )
    assert len(out) == 8 and out[-1].latents.device.type == "meta"


def test_rope_cache_is_bit_identical_with_relative_rope(model, embeds):
    from longlive_cli.runtime import RuntimeOptions

    plain = run(model, embeds, [0] * 6 + [1] * 2)
    try:
        model.configure(RuntimeOptions(rope_cache=True))
        cached = run(model, embeds, [0] * 6 + [1] * 2)
    finally:
        model.configure(RuntimeOptions())
    assert all(torch.equal(c, p) for c, p in zip(cached, plain, strict=True))


def test_compile_leaves_relative_rope_eager(model, embeds, monkeypatch):
    from longlive_cli.runtime import RuntimeOptions

    plain = run(model, embeds, [0] * 5)
    compiled_calls = []
    monkeypatch.setattr(CausalWanTransformer, "_run_compiled", lambda *a: compiled_calls.append(a))
    try:
        model.configure(RuntimeOptions(compile=True, static_cache=True))
        eager = run(model, embeds, [0] * 5)
    finally:
        model.configure(RuntimeOptions())
    assert compiled_calls == []  # the compiled graphs are traced for absolute RoPE's cache only
    assert all(rel_err(e, p) < 1e-5 for e, p in zip(eager, plain, strict=True))
