"""Fast-path switches give the plain path's video; the loop never syncs; overlap and stage timing."""

from __future__ import annotations

import copy
import logging
import threading

import pytest
import torch
from helpers import LIGHTHOUSE_STORY, mp4_frames, rel_err
from typer.testing import CliRunner

from longlive_cli import pipeline
from longlive_cli.cli import Attention, app
from longlive_cli.events import BlockDone, Finished, Interrupted
from longlive_cli.models.kv_cache import KVCache
from longlive_cli.models.loaders import Model, build_tiny_random, load_model
from longlive_cli.models.spec import resolve_model
from longlive_cli.models.transformer import CausalWanTransformer
from longlive_cli.runtime import ATTENTION_BACKENDS, RuntimeOptions, StageTimes
from longlive_cli.samplers.longlive import sample_video
from longlive_cli.storyboard import make_plan, parse_storyboard
from longlive_cli.video import OutputError

# 8 blocks of 3 latent frames: the 12-frame cache fills (blocks 0-3), then evicts; a switch at block 5.
SEGMENTS = [0] * 5 + [1] * 3


@pytest.fixture(scope="module")
def wan():
    torch.manual_seed(0)
    return build_tiny_random()[0]


@pytest.fixture(scope="module")
def embeds(wan):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(1, 512, wan.config.text_dim, generator=g) for _ in range(2)]


def generate_latents(wan, embeds, options: RuntimeOptions, device="cpu") -> torch.Tensor:
    model = CausalWanTransformer(copy.deepcopy(wan).to(device)).configure(options)
    blocks = sample_video(model, embeds, SEGMENTS, latent_height=10, latent_width=16, seed=3)
    return torch.cat([b.latents for b in blocks], dim=1)


@pytest.fixture(scope="module")
def plain(wan, embeds):
    return generate_latents(wan, embeds, RuntimeOptions())


def test_rope_cache_is_bit_identical(wan, embeds, plain):
    assert torch.equal(generate_latents(wan, embeds, RuntimeOptions(rope_cache=True)), plain)


def test_rope_cache_reuses_one_table_per_block(wan):
    model = CausalWanTransformer(copy.deepcopy(wan)).configure(RuntimeOptions(rope_cache=True))
    first = model.rope(6, 3, 5, 8)
    assert model.rope(6, 3, 5, 8)[0] is first[0]  # the block's next pass gets the same tensor
    plain_model = CausalWanTransformer(copy.deepcopy(wan))
    assert torch.equal(plain_model.rope(6, 3, 5, 8)[0], first[0])
    with pytest.raises(ValueError, match="outside the model's positional table"):
        model.rope(1023, 3, 5, 8)


def test_fused_qkv_matches_and_drops_the_separate_weights(wan, embeds, plain):
    model = CausalWanTransformer(copy.deepcopy(wan))
    params = sum(p.numel() for p in model.parameters())
    attn = model.wan.blocks[0].attn1
    expected = torch.cat([attn.to_q.weight, attn.to_k.weight, attn.to_v.weight])
    model.configure(RuntimeOptions(fused_qkv=True))
    assert torch.equal(attn.to_qkv.weight, expected)
    assert not hasattr(attn, "to_q") and sum(p.numel() for p in model.parameters()) == params
    assert rel_err(generate_latents(wan, embeds, RuntimeOptions(fused_qkv=True)), plain) < 1e-6


def test_static_cache_matches_the_growing_cache(wan, embeds, plain):
    assert rel_err(generate_latents(wan, embeds, RuntimeOptions(static_cache=True)), plain) < 1e-5


def test_static_cache_reads_whole_buffers_with_a_mask_until_full():
    cache = KVCache(num_layers=1, batch_size=1, tokens_per_frame=2, heads=1, head_dim=4, capacity_frames=6,
                    sink_frames=2, static=True)  # fmt: skip
    first = cache.assign(0, 2)
    assert first.token_index.tolist() == [0, 1, 2, 3]
    assert first.key_mask.shape == (1, 1, 1, 12) and first.key_mask.sum().item() == 4
    k = torch.arange(16.0).view(1, 4, 1, 4)
    cache.write(0, first, k, -k)
    keys, values = cache.read(0, first)
    assert keys.shape == (1, 12, 1, 4) and torch.equal(keys[:, :4], k) and torch.equal(values[:, :4], -k)
    cache.assign(2, 2)
    full = cache.assign(4, 2)
    assert full.key_mask is None  # all six frames valid: no mask, so SDPA may pick FlashAttention
    evict = cache.assign(6, 2)  # frame 6 and 7 overwrite frames 2 and 3 (the oldest outside the sink)
    assert evict.token_index.tolist() == [4, 5, 6, 7] and evict.key_mask is None
    assert cache.assign(6, 2).token_index is evict.token_index  # one index tensor per slot pattern


def test_attention_backend_is_used(wan, embeds, plain, monkeypatch):
    from longlive_cli.models import transformer

    seen = []
    original = transformer.dispatch_attention_fn

    def spy(*args, **kwargs):
        seen.append(kwargs.get("backend"))
        return original(*args, **kwargs)

    monkeypatch.setattr(transformer, "dispatch_attention_fn", spy)
    out = generate_latents(wan, embeds, RuntimeOptions(attention="sdpa-math"))
    assert set(seen) == {"_native_math"}  # self- and cross-attention alike
    assert rel_err(out, plain) < 1e-5


def test_a_flash_backend_is_not_given_a_mask(wan, embeds, plain, monkeypatch):
    """FlashAttention takes no mask: while the static cache fills, those passes use the default."""
    from longlive_cli.models import transformer

    calls = []
    original = transformer.dispatch_attention_fn

    def spy(q, k, v, attn_mask=None, backend=None):
        if q.shape[1] == k.shape[1] or k.shape[1] != 512:  # self-attention (not the 512 text tokens)
            calls.append((attn_mask is not None, backend))
        return original(q, k, v, attn_mask=attn_mask, backend=None if backend == "_native_flash" else backend)

    monkeypatch.setattr(transformer, "dispatch_attention_fn", spy)
    out = generate_latents(wan, embeds, RuntimeOptions(static_cache=True, attention="sdpa-flash"))
    assert set(calls) == {(True, None), (False, "_native_flash")}
    assert rel_err(out, plain) < 1e-5


def test_compiled_blocks_match_with_two_graphs_and_no_graph_break(wan, embeds, plain):
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    options = RuntimeOptions(static_cache=True, compile=True, compile_backend="aot_eager")
    model = CausalWanTransformer(copy.deepcopy(wan)).configure(options)
    blocks = sample_video(model, embeds, SEGMENTS, latent_height=10, latent_width=16, seed=3)
    out = torch.cat([b.latents for b in blocks], dim=1)
    assert model._compiled_ok and model._compiled_blocks is not None  # the compiled path ran
    assert rel_err(out, plain) < 1e-5
    # One graph while the cache fills (key mask), one once it is full; re-cache runs eagerly.
    assert counters["stats"]["unique_graphs"] == 2
    assert not counters["graph_break"]
    torch._dynamo.reset()


def test_failed_compilation_falls_back_to_eager_with_a_warning(wan, embeds, plain, caplog):
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no C++ compiler here")

    torch._dynamo.reset()
    options = RuntimeOptions(static_cache=True, compile=True, compile_backend=broken_backend)
    with caplog.at_level(logging.WARNING, logger="longlive_cli"):
        out = generate_latents(wan, embeds, options)
    assert "running the transformer eagerly" in caplog.text and "no C++ compiler here" in caplog.text
    assert rel_err(out, plain) < 1e-5
    torch._dynamo.reset()


def test_everything_on_matches_the_plain_path(wan, embeds, plain):
    options = RuntimeOptions(fused_qkv=True, rope_cache=True, static_cache=True, attention="sdpa-math")
    assert rel_err(generate_latents(wan, embeds, options), plain) < 1e-5


@pytest.mark.parametrize("options", [RuntimeOptions(), RuntimeOptions.for_device("cuda", compile=False)])
def test_the_block_loop_never_reads_the_device_back(wan, embeds, options):
    """On the meta device every ``.item()``, ``.cpu()`` or ``bool(tensor)`` raises: a loop that runs
    there through a switch and eviction has no host sync (noise only goes host -> device)."""
    with pytest.raises(RuntimeError):
        torch.zeros(1, device="meta").item()
    out = generate_latents(wan, embeds, options, device="meta")
    assert out.device.type == "meta" and out.shape == (1, 24, 16, 10, 16)


def test_options_default_on_for_cuda_off_for_cpu():
    cuda = RuntimeOptions.for_device("cuda")
    assert cuda.fused_qkv and cuda.rope_cache and cuda.static_cache and cuda.compile and cuda.overlap_decode
    assert RuntimeOptions.for_device("cpu") == RuntimeOptions()
    assert RuntimeOptions.for_device("cuda", compile=False, overlap_decode=None).overlap_decode
    assert RuntimeOptions.for_device("cpu", compile=True).static_cache  # compile needs static shapes
    with pytest.raises(ValueError, match="needs the static KV cache"):
        RuntimeOptions.for_device("cpu", compile=True, static_cache=False)
    with pytest.raises(ValueError, match="unknown attention 'fast'"):
        RuntimeOptions(attention="fast")
    with pytest.raises(ValueError, match="unknown runtime option"):
        RuntimeOptions.for_device("cpu", turbo=True)
    assert [a.value for a in Attention] == list(ATTENTION_BACKENDS)
    assert RuntimeOptions(rope_cache=True, attention="sdpa").describe() == "rope-cache, attention sdpa"


# ------------------------------------------------------------------------------------ pipeline


@pytest.fixture(scope="module")
def loaded():
    return load_model(resolve_model("tiny-random"), device=torch.device("cpu"), dtype=torch.float32)


def with_options(model: Model, options: RuntimeOptions) -> Model:
    transformer = CausalWanTransformer(copy.deepcopy(model.transformer.wan)).configure(options)
    return Model(spec=model.spec, transformer=transformer, vae=model.vae)


def run(model, tmp_path, name, **kwargs):
    plan = make_plan(parse_storyboard(LIGHTHOUSE_STORY))
    g = torch.Generator().manual_seed(2)
    embeds = [torch.randn(1, 512, 32, generator=g) for _ in plan.segments]
    out = tmp_path / name
    events = list(pipeline.generate_video(pipeline.VideoRequest(plan, model, embeds, out, seed=4, **kwargs)))
    return plan, out, events


def test_overlapped_decode_writes_the_same_video(loaded, tmp_path):
    _, inline, inline_events = run(loaded, tmp_path, "inline.mp4")
    overlapped = with_options(loaded, RuntimeOptions(overlap_decode=True))
    times = StageTimes()
    plan, out, events = run(overlapped, tmp_path, "overlap.mp4", times=times)
    assert out.read_bytes() == inline.read_bytes()
    done = [e for e in events if isinstance(e, BlockDone)]
    assert [e.video_frames_done for e in done] == [
        e.video_frames_done for e in inline_events if isinstance(e, BlockDone)
    ]
    assert isinstance(events[-1], Finished) and events[-1].num_video_frames == plan.num_video_frames
    # Decoding ran on the worker thread, the transformer on this one.
    assert times.threads["decode"] == {t for t in times.threads["decode"] if t.startswith("longlive-decode")}
    assert times.threads["denoise"] == {threading.current_thread().name}
    assert times.calls["wait"] == plan.num_blocks  # the generating thread's waits are timed too


def test_stage_times_count_every_stage(loaded, tmp_path):
    times = StageTimes()
    plan, _, _ = run(loaded, tmp_path, "t.mp4", times=times)
    n = plan.num_blocks
    assert dict(times.calls) == {
        "prompt": 2,
        "recache": 1,
        "denoise": n,
        "clean": n,
        "decode": n,
        "encode": n + 1,
    }
    assert all(s > 0 for s in times.seconds.values())


def test_overlapped_stop_keeps_every_generated_block(loaded, tmp_path):
    overlapped = with_options(loaded, RuntimeOptions(overlap_decode=True))
    calls = []

    def stop_after_two() -> bool:
        calls.append(1)
        return len(calls) >= 2

    _plan, out, events = run(overlapped, tmp_path, "s.mp4", should_stop=stop_after_two)
    stopped = events[-1]
    assert isinstance(stopped, Interrupted) and not out.exists()
    assert stopped.num_video_frames == 9 + 12  # blocks 0 and 1, both written before the partial file closed
    assert len(mp4_frames(stopped.path)) == stopped.num_video_frames


def test_a_failure_on_the_worker_reaches_the_caller_and_leaves_nothing(loaded, tmp_path, monkeypatch):
    overlapped = with_options(loaded, RuntimeOptions(overlap_decode=True))
    original = pipeline.VideoWriter.write
    count = []

    def failing_write(self, frames):
        count.append(1)
        if len(count) == 3:
            raise OutputError("disk full while writing")
        return original(self, frames)

    monkeypatch.setattr(pipeline.VideoWriter, "write", failing_write)
    with pytest.raises(OutputError, match="disk full"):
        run(overlapped, tmp_path, "f.mp4")
    assert list(tmp_path.iterdir()) == []


def test_cli_speed_flags_give_the_same_video(tmp_path):
    story = tmp_path / "s.yaml"
    story.write_text(LIGHTHOUSE_STORY)
    runner = CliRunner()
    base = ["generate", str(story), "--model", "tiny-random", "--seed", "1"]
    plain = runner.invoke(app, [*base, "-q", "-o", str(tmp_path / "a.mp4")])
    assert plain.exit_code == 0, plain.output
    flags = ["--overlap", "--fused-qkv", "--rope-cache", "--static-cache", "--attention", "sdpa-math"]
    fast = runner.invoke(app, [*base, "-o", str(tmp_path / "b.mp4"), *flags])
    assert fast.exit_code == 0, fast.output
    assert (
        "speed options: fused-qkv, rope-cache, static-cache, overlap-decode, attention sdpa-math"
        in fast.stderr
    )
    assert abs(mp4_frames(tmp_path / "a.mp4").astype(int) - mp4_frames(tmp_path / "b.mp4")).max() <= 1
    bad = runner.invoke(app, [*base, "-o", str(tmp_path / "c.mp4"), "--compile", "--no-static-cache"])
    assert bad.exit_code == 2 and "needs the static KV cache" in bad.stderr
    assert not (tmp_path / "c.mp4").exists()


def test_int8_weights_are_not_fused(wan, embeds):
    from longlive_cli.models.int8 import quantize_transformer

    quantized = copy.deepcopy(wan)
    quantize_transformer(quantized, "w8")
    model = CausalWanTransformer(quantized).configure(RuntimeOptions(fused_qkv=True, static_cache=True))
    assert model.quantized and not hasattr(model.wan.blocks[0].attn1, "to_qkv")
    blocks = list(sample_video(model, embeds[:1], [0] * 2, latent_height=6, latent_width=8, seed=1))
    assert torch.isfinite(blocks[-1].latents).all()


def _second_graph_fails():
    """A torch.compile backend that runs the first graph eagerly and fails on the second (the cache-full
    graph, first compiled at block 4): a failure after compiled calls have already succeeded."""
    graphs = []

    def backend(graph, example_inputs):
        graphs.append(graph)
        if len(graphs) > 1:
            raise RuntimeError("recompile limit reached (simulated)")
        return graph.forward

    return backend, graphs


def test_a_compile_failure_at_a_later_call_falls_back_and_the_video_is_unchanged(wan, embeds, plain, caplog):
    backend, graphs = _second_graph_fails()
    torch._dynamo.reset()
    options = RuntimeOptions(static_cache=True, compile=True, compile_backend=backend)
    model = CausalWanTransformer(copy.deepcopy(wan)).configure(options)
    with caplog.at_level(logging.WARNING, logger="longlive_cli"):
        blocks = sample_video(model, embeds, SEGMENTS, latent_height=10, latent_width=16, seed=3)
        out = torch.cat([b.latents for b in blocks], dim=1)
    assert len(graphs) == 2 and model._compiled_ok  # the first graph ran compiled before the failure
    assert caplog.text.count("compile failed") == 1 and "recompile limit reached" in caplog.text
    assert len(model.fallbacks) == 1 and model.fallbacks[0].startswith("compile: ")
    assert "recompile limit reached" in model.fallbacks[0]
    assert rel_err(out, plain) < 1e-5
    torch._dynamo.reset()


def test_strict_speed_turns_a_fallback_into_an_error(wan, embeds):
    from longlive_cli.errors import GenerationError

    backend, _ = _second_graph_fails()
    torch._dynamo.reset()
    options = RuntimeOptions(static_cache=True, compile=True, compile_backend=backend, strict=True)
    model = CausalWanTransformer(copy.deepcopy(wan)).configure(options)
    with pytest.raises(GenerationError, match="--strict-speed"):
        list(sample_video(model, embeds, SEGMENTS, latent_height=10, latent_width=16, seed=3))
    torch._dynamo.reset()


def test_an_attention_backend_that_fails_its_probe_is_switched_off(wan, embeds, plain, monkeypatch, caplog):
    from longlive_cli.errors import GenerationError
    from longlive_cli.models import transformer

    original = transformer.dispatch_attention_fn

    def no_cudnn(q, k, v, attn_mask=None, backend=None):
        if backend == "_native_cudnn":
            raise RuntimeError("cuDNN attention is not available (simulated)")
        return original(q, k, v, attn_mask=attn_mask, backend=backend)

    monkeypatch.setattr(transformer, "dispatch_attention_fn", no_cudnn)
    with caplog.at_level(logging.WARNING, logger="longlive_cli"):
        out = generate_latents(wan, embeds, RuntimeOptions(attention="sdpa-cudnn"))
    assert "attention sdpa-cudnn failed" in caplog.text and "not available (simulated)" in caplog.text
    assert torch.equal(out, plain)
    with pytest.raises(GenerationError, match="attention sdpa-cudnn failed"):
        CausalWanTransformer(copy.deepcopy(wan)).configure(
            RuntimeOptions(attention="sdpa-cudnn", strict=True)
        )


def test_flash_attn_without_its_package_is_refused_when_the_options_are_read(monkeypatch, tmp_path):
    import importlib.util

    from longlive_cli.errors import InputError

    real = importlib.util.find_spec
    missing = {"flash_attn", "flash_attn_interface"}
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a)
    )
    with pytest.raises(InputError, match="needs the flash-attn package"):
        RuntimeOptions(attention="flash-attn")
    with pytest.raises(InputError, match=r"FlashAttention-3 \(module flash_attn_interface"):
        RuntimeOptions(attention="flash-attn-3")
    for name in ("flash-attn", "flash-attn-3"):
        story = ["generate", "examples/panda_short.yaml", "-o", str(tmp_path / "p.mp4"), "-m", "tiny-random"]
        result = CliRunner().invoke(app, [*story, "--attention", name])
        assert result.exit_code == 2 and "needs" in result.stderr


def test_the_static_cache_keeps_one_buffer_per_layer():
    """A compiled in-place write into one [layers, ...] buffer becomes a full-size copy per layer."""
    cache = KVCache(num_layers=3, batch_size=1, tokens_per_frame=4, heads=2, head_dim=8, static=True)
    pointers = {t.data_ptr() for t in (*cache._k, *cache._v)}
    assert len(cache._k) == 3 and len(pointers) == 6
    assert cache._k[0].shape == (1, 12 * 4, 2, 8) and cache.k.shape == (3, 1, 12 * 4, 2, 8)
    write = cache.assign(0, 3)
    cache.write(1, write, torch.ones(1, 12, 2, 8), torch.ones(1, 12, 2, 8))
    assert cache._k[1][:, :12].eq(1).all() and not cache._k[0].any() and not cache._k[2].any()
