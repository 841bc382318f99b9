"""The prompt-embedding cache: hits never load the text encoder, misses do; the key follows the encoder's
files, the token limit, the dtype and the device; damaged entries are refused and recomputed; files get
the user's umask (the converted-weights cache too)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
import torch
from helpers import CFG, LIGHTHOUSE_STORY, random_wan, save_official
from typer.testing import CliRunner

from longlive_cli import LongLive
from longlive_cli.cli import app
from longlive_cli.embed_cache import EmbeddingCache, files_identity
from longlive_cli.models import loaders
from longlive_cli.models.checkpoints import load_transformer
from longlive_cli.models.spec import embeddings_cache_dir

runner = CliRunner()


def new_tiny(**kwargs) -> LongLive:
    return LongLive.from_pretrained("tiny-random", device="cpu", **kwargs)


@pytest.fixture
def count_loads(monkeypatch):
    """Counts text-encoder loads (the real loader still runs)."""
    calls: list[str] = []
    real = loaders.load_text_encoder

    def counting(*args, **kwargs):
        calls.append(str(kwargs.get("device")))
        return real(*args, **kwargs)

    monkeypatch.setattr(loaders, "load_text_encoder", counting)
    return calls


def entries() -> list[Path]:
    folder = embeddings_cache_dir()
    return sorted(folder.glob("*.safetensors")) if folder.is_dir() else []


def test_hit_never_loads_the_encoder_and_gives_the_same_embeddings(count_loads):
    first = new_tiny()
    plan = first.plan(LIGHTHOUSE_STORY)
    first.encode_prompts([plan])
    assert len(count_loads) == 1 and len(entries()) == 2  # two unique prompts, one file each

    second = new_tiny()  # a new run: nothing in memory
    second.encode_prompts([second.plan(LIGHTHOUSE_STORY)])
    assert len(count_loads) == 1  # every prompt cached: the encoder was not loaded
    for seg in plan.segments:
        a, b = first.prompt_embedding(seg.text), second.prompt_embedding(seg.text)
        assert a.shape == b.shape and a.shape[0] == 1 and a.shape[2] == 32 and torch.equal(a, b)

    third = new_tiny()  # one new prompt: a miss loads the encoder, for that prompt only
    third.encode_prompts([third.plan(LIGHTHOUSE_STORY.replace("in a storm", "in the fog"))])
    assert len(count_loads) == 2 and len(entries()) == 3


def test_no_embed_cache_neither_reads_nor_writes(count_loads):
    new_tiny().encode_prompts([new_tiny().plan(LIGHTHOUSE_STORY)])
    before = entries()
    off = new_tiny(embed_cache=False)
    off.encode_prompts([off.plan(LIGHTHOUSE_STORY.replace("dusk", "dawn"))])
    assert len(count_loads) == 2 and entries() == before
    off2 = new_tiny(embed_cache=False)
    off2.encode_prompts([off2.plan(LIGHTHOUSE_STORY)])  # cached, but the cache is off: encoded again
    assert len(count_loads) == 3


def test_second_cli_run_with_every_prompt_cached_does_not_load_the_encoder(tmp_path, count_loads):
    story = tmp_path / "s.yaml"
    story.write_text(LIGHTHOUSE_STORY)
    args = ["generate", str(story), "-m", "tiny-random", "--seed", "2", "-q", "--device", "cpu"]
    assert runner.invoke(app, [*args, "-o", str(tmp_path / "a.mp4")]).exit_code == 0
    assert len(count_loads) == 1
    assert runner.invoke(app, [*args, "-o", str(tmp_path / "b.mp4")]).exit_code == 0
    assert len(count_loads) == 1  # cached: not loaded again, and the same video
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "c.mp4"), "--no-embed-cache"])
    assert result.exit_code == 0 and len(count_loads) == 2


def test_key_changes_with_the_encoder_file_token_limit_dtype_and_device(tmp_path):
    weights = tmp_path / "encoder.safetensors"
    weights.write_bytes(b"x" * 100)

    def cache(**changes) -> EmbeddingCache:
        kwargs = dict(encoder=files_identity(weights), max_length=512, dtype=torch.bfloat16, device="cpu")
        kwargs.update(changes)
        return EmbeddingCache(tmp_path / "emb", text_dim=8, **kwargs)

    base = cache()
    embed = torch.randn(1, 5, 8).bfloat16()
    base.put("a fox", embed, tokens=5)
    hit = cache().get("a fox")
    assert hit is not None and torch.equal(hit[0], embed) and hit[1] == 5
    assert cache().get("a fox ") is None  # the text exactly as given
    assert cache(max_length=256).get("a fox") is None
    assert cache(dtype=torch.float32).get("a fox") is None
    assert cache(device="cuda").get("a fox") is None
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # the file was replaced or touched
    assert cache().key("a fox") != base.key("a fox") and cache().get("a fox") is None


def test_key_follows_the_encoder_folder_of_a_model_spec(tmp_path, count_loads):
    from longlive_cli.models.umt5 import build_tiny_text_encoder

    base = tmp_path / "base"
    (base / "transformer").mkdir(parents=True)
    import json

    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from longlive_cli.models.vae import tiny_vae_config

    (base / "transformer" / "config.json").write_text(json.dumps(dict(WanTransformer3DModel(**CFG).config)))
    text = build_tiny_text_encoder(seed=3)
    text.text_encoder.to(torch.bfloat16)  # stored in bf16: the encoder computes in bf16
    text.save_pretrained(base)
    AutoencoderKLWan(**tiny_vae_config()).save_pretrained(base / "vae")
    gen = save_official(tmp_path / "gen.pt", {k: v * 0.2 for k, v in random_wan(1).items()})
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"base: {base}\ngenerator: {gen}\n")

    ll = LongLive.from_pretrained(str(spec), device="cpu")
    assert ll.dtypes["text_encoder"] == torch.bfloat16
    plan = ll.plan(LIGHTHOUSE_STORY)
    ll.encode_prompts([plan])
    dtypes = {ll.prompt_embedding(s.text).dtype for s in plan.segments}
    assert len(count_loads) == 1 and dtypes == {torch.bfloat16}
    again = LongLive.from_pretrained(str(spec), device="cpu")
    again.encode_prompts([again.plan(LIGHTHOUSE_STORY)])
    assert len(count_loads) == 1
    weights = next((base / "text_encoder").glob("*.safetensors"))
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    touched = LongLive.from_pretrained(str(spec), device="cpu")
    touched.encode_prompts([touched.plan(LIGHTHOUSE_STORY)])
    assert len(count_loads) == 2  # the encoder's file changed: new keys, encoded again


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_shape", "other_key"])
def test_damaged_entry_is_refused_with_a_warning_and_recomputed(damage, count_loads, caplog):
    from safetensors.torch import save_file

    first = new_tiny()
    plan = first.plan(LIGHTHOUSE_STORY)
    first.encode_prompts([plan])
    cache = first.prompts.cache
    assert cache is not None
    text = plan.segments[0].text
    path, other = cache.path(text), cache.path(plan.segments[1].text)
    good = first.prompt_embedding(text)
    if damage == "garbage":
        path.write_bytes(b"\0 not safetensors" * 10)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:-40])
    elif damage == "wrong_shape":
        meta = {"format": "1", "key": cache.key(text), "tokens": "3"}
        save_file({"embedding": torch.zeros(1, 3, 7)}, str(path), metadata=meta)
    else:  # another prompt's entry under this prompt's name
        path.write_bytes(other.read_bytes())

    second = new_tiny()
    with caplog.at_level(logging.WARNING, logger="longlive_cli"):
        second.encode_prompts([second.plan(LIGHTHOUSE_STORY)])
    assert "unusable" in caplog.text and path.name in caplog.text
    assert len(count_loads) == 2 and torch.equal(second.prompt_embedding(text), good)  # recomputed
    hit = cache.get(text)  # and rewritten whole
    assert hit is not None and torch.equal(hit[0], good)


def test_truncation_warning_is_given_on_a_cache_hit_too(tmp_path, caplog):
    story = f"duration: 1s\nresolution: 64x48\nprompts:\n  - at: 0s\n    text: {'word ' * 200}\n"
    for _ in range(2):
        ll = new_tiny()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="longlive_cli"):
            ll.encode_prompts([ll.plan(story)])
        assert "prompt 1 has" in caplog.text and "reads the first 512" in caplog.text


def test_live_session_keeps_one_encoder_and_encodes_through_the_cache(count_loads):
    ll = new_tiny()
    assert ll.text_encoder_placement().device == "cpu"
    a = ll.encode_prompt("a red kite over the sea")
    assert a.shape[:1] == (1,) and a.shape[2] == 32 and len(count_loads) == 1
    ll.encode_prompt("a blue kite over the sea")  # the kept encoder: no second load
    assert len(count_loads) == 1 and ll.prompts.kept is not None
    ll.release_text_encoder()
    assert ll.prompts.kept is None
    other = new_tiny()
    assert torch.equal(other.encode_prompt("a red kite over the sea"), a) and len(count_loads) == 1  # cached


def test_cache_files_get_the_users_umask(tmp_path):
    old = os.umask(0o002)
    try:
        ll = new_tiny()
        ll.encode_prompts([ll.plan(LIGHTHOUSE_STORY)])
        gen = save_official(tmp_path / "gen.pt", random_wan(0))
        load_transformer(CFG, generator=gen, cache_dir=tmp_path / "converted")
    finally:
        os.umask(old)
    files = [*entries(), *(tmp_path / "converted").glob("*.safetensors")]
    assert len(files) == 3
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o664}  # safetensors alone writes 0600
    assert stat.S_IMODE(embeddings_cache_dir().stat().st_mode) == 0o775
