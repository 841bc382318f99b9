"""Official checkpoint loading: safe reads, prefixes, LoRA merge, key conversion, strict checks, cache.

The files are tiny random models written in the official formats: ``{"generator": {"model." + wan_key:
tensor}, "generator_ema": ...}`` (NVlabs/LongLive ``utils/wan_wrapper.py``, ``interactive_inference.py``)
and peft LoRA dicts (``utils/lora_utils.py``). The original Wan key layout below is written from
``wan/modules/model.py`` and the diffusers names by hand, independently of diffusers' converter.
"""

from __future__ import annotations

import os

import pytest
import torch
from diffusers import WanTransformer3DModel
from helpers import CFG, DIM, LAYOUT, LINEARS, peft_format, random_lora, random_wan, save_official

from longlive_cli.models.checkpoints import (
    CheckpointError,
    load_lora_state_dict,
    load_official_state_dict,
    load_transformer,
    merge_lora,
)


def diffusers_weights(model: WanTransformer3DModel) -> dict[str, torch.Tensor]:
    return model.state_dict()


def assert_loaded(model: WanTransformer3DModel, source: dict[str, torch.Tensor]) -> None:
    got = diffusers_weights(model)
    assert set(got) == {new for _, new in LAYOUT.values()}
    for orig, (_, new) in LAYOUT.items():
        assert torch.equal(got[new], source[orig]), orig


class NotATensor:
    """Anything pickle would have to import and construct."""


@pytest.fixture(scope="module")
def gen_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "longlive_base.pt"
    return save_official(path, random_wan(0), random_wan(1))


# --- reading the generator ---------------------------------------------------------------------------


def test_layout_matches_diffusers_model():
    model = WanTransformer3DModel(**CFG)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert expected == {new: shape for shape, new in LAYOUT.values()}


def test_round_trip_is_exact(gen_file):
    assert_loaded(load_transformer(CFG, generator=gen_file), random_wan(0))


def test_generator_ema_is_selected_by_key(gen_file):
    assert_loaded(load_transformer(CFG, generator=gen_file, generator_key="generator_ema"), random_wan(1))
    sd = load_official_state_dict(gen_file, key="generator_ema")
    assert set(sd) == set(LAYOUT)


def test_model_is_built_without_random_init_and_keeps_rope_tables(gen_file):
    model = load_transformer(CFG, generator=gen_file)
    reference = WanTransformer3DModel(**CFG)
    assert torch.equal(model.rope.freqs_cos, reference.rope.freqs_cos)
    assert not any(p.requires_grad for p in model.parameters())
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_fsdp_and_compile_prefixes_are_stripped(tmp_path):
    def fsdp(k):  # EMA_FSDP names: nested FSDP units, activation checkpointing, torch.compile
        k = k.replace("blocks.0.", "blocks.0._fsdp_wrapped_module._checkpoint_wrapped_module.")
        k = k.replace("blocks.1.", "blocks.1._fsdp_wrapped_module._orig_mod.")
        return "_fsdp_wrapped_module.model." + k

    path = save_official(tmp_path / "ema.pt", random_wan(0), random_wan(2), wrap=fsdp)
    assert set(load_official_state_dict(path, key="generator_ema")) == set(LAYOUT)
    assert_loaded(load_transformer(CFG, generator=path, generator_key="generator_ema"), random_wan(2))


def test_safetensors_generator_is_accepted(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "gen.safetensors"
    save_file({"model." + k: v for k, v in random_wan(3).items()}, path)
    assert_loaded(load_transformer(CFG, generator=path), random_wan(3))


def test_dtype_is_applied_except_to_the_modules_diffusers_keeps_in_float32(gen_file):
    model = load_transformer(CFG, generator=gen_file, dtype=torch.bfloat16)
    keep = set(type(model)._keep_in_fp32_modules)
    dtypes = {n: p.dtype for n, p in model.named_parameters()}
    kept = {n for n in dtypes if keep & set(n.split("."))}
    assert kept and {dtypes[n] for n in kept} == {torch.float32}  # time embedder, modulation, norm2
    assert {d for n, d in dtypes.items() if n not in kept} == {torch.bfloat16}
    assert model.rope.freqs_cos.dtype == torch.float32  # the RoPE tables are not cast
    w = diffusers_weights(model)["blocks.1.attn2.to_k.weight"]
    assert torch.equal(w, random_wan(0)["blocks.1.cross_attn.k.weight"].bfloat16())


def test_missing_generator_key_lists_what_is_there(tmp_path):
    path = tmp_path / "only_gen.pt"
    save_official(path, random_wan(0))
    with pytest.raises(CheckpointError, match="generator_ema") as e:
        load_official_state_dict(path, key="generator_ema")
    assert str(path) in str(e.value) and "'generator'" in str(e.value)


def test_arbitrary_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"generator": {"model.patch_embedding.bias": torch.zeros(DIM)}, "extra": NotATensor()}, path)
    with pytest.raises(CheckpointError, match="refused for safety") as e:
        load_official_state_dict(path)
    assert str(path) in str(e.value)
    lora_path = tmp_path / "evil_lora.pt"
    torch.save({"generator_lora": {}, "x": NotATensor()}, lora_path)
    with pytest.raises(CheckpointError, match="refused for safety"):
        load_lora_state_dict(lora_path)


def test_missing_file_and_garbage_file_are_reported(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_official_state_dict(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint" * 8)
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_official_state_dict(junk)


def test_missing_generator_weight_is_named(tmp_path):
    sd = random_wan(0)
    del sd["blocks.1.cross_attn.o.weight"]
    path = save_official(tmp_path / "missing.pt", sd)
    with pytest.raises(CheckpointError, match=r"1 weights the model needs are missing") as e:
        load_transformer(CFG, generator=path)
    assert "blocks.1.attn2.to_out.0.weight" in str(e.value) and str(path) in str(e.value)


def test_unexpected_generator_weight_is_named(tmp_path):
    sd = random_wan(0)
    sd["blocks.0.extra_proj.weight"] = torch.zeros(3)
    path = save_official(tmp_path / "extra.pt", sd)
    with pytest.raises(CheckpointError, match=r"1 entries the model does not have") as e:
        load_transformer(CFG, generator=path)
    assert "blocks.0.extra_proj.weight" in str(e.value) and str(path) in str(e.value)


def test_generator_shape_mismatch_is_named(tmp_path):
    sd = random_wan(0)
    sd["blocks.0.ffn.0.weight"] = torch.zeros(7, DIM)
    path = save_official(tmp_path / "shape.pt", sd)
    with pytest.raises(
        CheckpointError, match=r"blocks\.0\.ffn\.0\.weight is \(7, 24\), the model expects \(48, 24\)"
    ):
        load_transformer(CFG, generator=path)


# --- LoRA --------------------------------------------------------------------------------------------


TARGETS = ("blocks.0.self_attn.q", "blocks.1.cross_attn.o", "blocks.1.ffn.0", "blocks.0.ffn.2")


def test_merge_arithmetic_and_untouched_weights():
    base = random_wan(0)
    lora = random_lora(TARGETS, rank=4, seed=5)
    merged = merge_lora(base, lora, rank=4, alpha=8)
    for m, (a, b) in lora.items():
        want = base[f"{m}.weight"].double() + (8 / 4) * (b.double() @ a.double())
        torch.testing.assert_close(merged[f"{m}.weight"].double(), want, rtol=1e-6, atol=1e-5)
        assert not torch.equal(merged[f"{m}.weight"], base[f"{m}.weight"])
    untouched = set(base) - {f"{m}.weight" for m in TARGETS}
    assert all(merged[k] is base[k] for k in untouched)
    assert merged is not base and all(torch.equal(base[k], random_wan(0)[k]) for k in base)


def test_merge_keeps_each_weights_dtype():
    base = {k: v.bfloat16() for k, v in random_wan(0).items()}
    lora = random_lora(TARGETS[:1], rank=2, seed=1)
    merged = merge_lora(base, lora, rank=2, alpha=2)
    w = "blocks.0.self_attn.q.weight"
    a, b = lora[TARGETS[0]]
    assert merged[w].dtype == torch.bfloat16
    assert torch.equal(merged[w], (base[w].float() + b @ a).bfloat16())


@pytest.mark.parametrize(
    ("wrapper", "adapter", "prefix"),
    [("generator_lora", None, "base_model.model."), (None, "default", "base_model.model."), (None, None, "")],
)
def test_lora_file_formats(tmp_path, wrapper, adapter, prefix):
    lora = random_lora(TARGETS, rank=4, seed=5)
    sd = peft_format(lora, adapter, prefix)
    path = tmp_path / "lora.pt"
    torch.save({wrapper: sd, "critic_lora": {}, "step": 3} if wrapper else sd, path)
    got = load_lora_state_dict(path)
    assert set(got) == set(TARGETS)
    for m in TARGETS:
        assert torch.equal(got[m][0], lora[m][0]) and torch.equal(got[m][1], lora[m][1])


def test_load_transformer_merges_lora(tmp_path, gen_file):
    lora = random_lora([f"blocks.{i}.{n}" for i in range(2) for n in LINEARS], rank=4, seed=9)
    path = tmp_path / "lora.pt"
    torch.save({"generator_lora": peft_format(lora)}, path)
    model = load_transformer(CFG, generator=gen_file, lora=path, lora_rank=4, lora_alpha=2)
    expected = merge_lora(random_wan(0), lora, rank=4, alpha=2)
    assert_loaded(model, expected)
    # every Linear inside every block is a target (utils/lora_utils.py), and each one changed
    base = random_wan(0)
    assert all(not torch.equal(expected[f"{m}.weight"], base[f"{m}.weight"]) for m in lora)


def test_lora_rank_mismatch(tmp_path, gen_file):
    path = tmp_path / "lora.pt"
    torch.save(peft_format(random_lora(TARGETS, rank=4, seed=1)), path)
    with pytest.raises(CheckpointError, match="LoRA rank is 4, spec says 8") as e:
        load_transformer(CFG, generator=gen_file, lora=path, lora_rank=8, lora_alpha=8)
    assert str(path) in str(e.value)


def test_lora_shape_mismatch(tmp_path, gen_file):
    path = tmp_path / "lora.pt"
    torch.save(peft_format(random_lora(TARGETS[:1], rank=4, seed=1, fan_in=DIM + 1)), path)
    with pytest.raises(CheckpointError, match=r"'blocks\.0\.self_attn\.q\.weight' has shape \(24, 24\)") as e:
        load_transformer(CFG, generator=gen_file, lora=path, lora_rank=4, lora_alpha=4)
    assert "(24, 25)" in str(e.value) and str(path) in str(e.value)


def test_lora_for_missing_module(tmp_path, gen_file):
    lora = random_lora(TARGETS[:1], rank=4, seed=1)
    path = tmp_path / "lora.pt"
    torch.save(peft_format({"blocks.7.self_attn.q": lora[TARGETS[0]]}), path)
    with pytest.raises(CheckpointError, match=r"'blocks\.7\.self_attn\.q\.weight'") as e:
        load_transformer(CFG, generator=gen_file, lora=path, lora_rank=4, lora_alpha=4)
    assert str(path) in str(e.value)


def test_lora_file_problems(tmp_path):
    lora = peft_format(random_lora(TARGETS[:1], rank=4, seed=1))
    half = {k: v for k, v in lora.items() if "lora_A" in k}
    dora = {**lora, "base_model.model.blocks.0.self_attn.q.lora_magnitude_vector": torch.ones(DIM)}
    cases = [(half, "not its pair"), (dora, "lora_magnitude_vector"), ({}, "no LoRA weights")]
    for i, (sd, message) in enumerate(cases):
        path = tmp_path / f"bad{i}.pt"
        torch.save(sd, path)
        with pytest.raises(CheckpointError, match=message):
            load_lora_state_dict(path)


# --- conversion cache --------------------------------------------------------------------------------


def test_cache_is_written_then_read_without_the_pt_files(tmp_path, monkeypatch):
    gen = save_official(tmp_path / "gen.pt", random_wan(0))
    lora_path = tmp_path / "lora.pt"
    lora = random_lora(TARGETS, rank=4, seed=3)
    torch.save({"generator_lora": peft_format(lora)}, lora_path)
    cache = tmp_path / "cache"
    kwargs = dict(generator=gen, lora=lora_path, lora_rank=4, lora_alpha=4, cache_dir=cache)
    first = diffusers_weights(load_transformer(CFG, **kwargs))
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".safetensors"

    calls = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a) or {})
    second = load_transformer(CFG, **kwargs)
    assert calls == []
    assert_loaded(second, merge_lora(random_wan(0), lora, rank=4, alpha=4))
    assert all(torch.equal(first[k], v) for k, v in diffusers_weights(second).items())
    # another dtype is another cache entry, built from the sources
    with pytest.raises(CheckpointError):
        load_transformer(CFG, **kwargs, dtype=torch.bfloat16)
    assert calls


def test_cache_is_invalidated_when_a_source_changes(tmp_path, monkeypatch):
    gen = save_official(tmp_path / "gen.pt", random_wan(0))
    cache = tmp_path / "cache"
    assert_loaded(load_transformer(CFG, generator=gen, cache_dir=cache), random_wan(0))
    stat = gen.stat()
    save_official(gen, random_wan(4))  # same size as before: only mtime tells them apart
    assert gen.stat().st_size == stat.st_size
    # set mtime explicitly: a coarse filesystem clock could otherwise give the old value
    os.utime(gen, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert_loaded(load_transformer(CFG, generator=gen, cache_dir=cache), random_wan(4))
    assert len(list(cache.iterdir())) == 2

    calls = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a) or {})
    os.utime(gen, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000))
    with pytest.raises(CheckpointError):  # touched again: the cache is not trusted, the source is read
        load_transformer(CFG, generator=gen, cache_dir=cache)
    assert calls


def test_damaged_cache_is_rebuilt(tmp_path):
    gen = save_official(tmp_path / "gen.pt", random_wan(0))
    cache = tmp_path / "cache"
    load_transformer(CFG, generator=gen, cache_dir=cache)
    (entry,) = cache.iterdir()
    entry.write_bytes(b"\0" * 16)
    assert_loaded(load_transformer(CFG, generator=gen, cache_dir=cache), random_wan(0))
    assert entry.stat().st_size > 16 and not [p for p in cache.iterdir() if p.suffix == ".tmp"]


# --- diffusers transformer folders ------------------------------------------------------------------------


@pytest.mark.parametrize("shard", [None, "20KB"])
def test_diffusers_transformer_folder_loads_whole_or_sharded(tmp_path, shard):
    from longlive_cli.models.checkpoints import load_diffusers_transformer

    torch.manual_seed(3)
    source = WanTransformer3DModel(**CFG)
    kwargs = {"max_shard_size": shard} if shard else {}
    source.save_pretrained(tmp_path / "transformer", **kwargs)
    sharded = (tmp_path / "transformer" / "diffusion_pytorch_model.safetensors.index.json").is_file()
    assert sharded == (shard is not None)
    model = load_diffusers_transformer(tmp_path / "transformer", dtype=torch.bfloat16)
    want = source.state_dict()
    assert all(torch.equal(v, want[k].bfloat16()) for k, v in model.state_dict().items())
    assert {n for n, _ in model.named_buffers()} == {n for n, _ in source.named_buffers()}
    assert all(torch.equal(b, dict(source.named_buffers())[n]) for n, b in model.named_buffers())
    (tmp_path / "transformer" / "config.json").write_text("{}")  # the default config: other shapes
    with pytest.raises(CheckpointError, match="does not fit the transformer config"):
        load_diffusers_transformer(tmp_path / "transformer")
