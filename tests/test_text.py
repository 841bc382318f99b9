"""Tests for longlive_cli.text: Wan's zero-padded 512-row UMT5 embeddings, dedupe, save/load round trip."""

from __future__ import annotations

import pytest
import torch

from longlive_cli.models.umt5 import (
    TEXT_LEN,
    TextEncoder,
    build_tiny_text_encoder,
    build_tiny_tokenizer,
    clean_prompt,
)
from longlive_cli.text import encode_prompts

LONG_PROMPT = "a " * 300  # one byte token per char: 599 tokens + </s> after cleaning


PAIR = ["a red fox", "snow falls on the quiet town at night"]  # second one is longer


@pytest.fixture(scope="module")
def enc() -> TextEncoder:
    return build_tiny_text_encoder(seed=0)


# The tiny model still runs 512-token attention; encode each test input once per module to stay fast.
@pytest.fixture(scope="module")
def pair_out(enc) -> torch.Tensor:
    return enc.encode(PAIR)


@pytest.fixture(scope="module")
def fox_alone(enc) -> torch.Tensor:
    return enc.encode(["a red fox"])


def _count_forwards(encoder: TextEncoder, monkeypatch) -> list[int]:
    """Record the batch size of every encoder forward call."""
    calls: list[int] = []
    original = encoder.text_encoder.forward

    def counting_forward(*args, **kwargs):
        calls.append(int(kwargs["input_ids"].shape[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(encoder.text_encoder, "forward", counting_forward)
    return calls


def test_encode_shape_dtype_device(enc, pair_out):
    assert pair_out.shape == (2, TEXT_LEN, 32)
    assert pair_out.dtype == torch.float32 and pair_out.device == enc.device
    assert enc.text_dim == 32


def test_rows_past_token_count_are_zero(enc, pair_out):
    counts = enc.token_counts(PAIR)
    assert counts == [len(p.encode()) + 1 for p in PAIR]  # bytes + </s>
    for i, n in enumerate(counts):
        assert torch.count_nonzero(pair_out[i, n:]) == 0
        # every real row (including </s>) carries a non-zero vector
        assert bool((pair_out[i, :n].abs().sum(dim=-1) > 0).all())


def test_raw_encoder_output_is_not_zero_past_token_count(enc):
    # Guards the premise: without Wan's explicit zeroing the padded rows would be non-zero.
    ids, mask = enc.tokenize(["a red fox"])
    with torch.no_grad():
        raw = enc.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.count_nonzero(raw[0, 10:]) > 0


def test_batching_invariance(pair_out, fox_alone):
    # "a red fox" alone == the same prompt batched with a longer prompt
    torch.testing.assert_close(pair_out[:1], fox_alone, atol=1e-6, rtol=1e-6)


def test_tokenize_pads_right_with_eos(enc):
    ids, mask = enc.tokenize(["ab"])
    assert ids.shape == mask.shape == (1, TEXT_LEN)
    assert ids[0, 2].item() == enc.tokenizer.eos_token_id == 1
    assert mask[0, :3].tolist() == [1, 1, 1] and int(mask.sum()) == 3
    assert bool((ids[0, 3:] == 0).all())  # <pad> = 0


def test_encode_prompts_dedupes_and_reports_truncation(enc, fox_alone, monkeypatch):
    assert enc.token_counts([LONG_PROMPT]) == [600]
    ids, mask = enc.tokenize([LONG_PROMPT])
    assert int(mask.sum()) == TEXT_LEN and ids[0, -1].item() == 1  # truncated, </s> kept last

    calls = _count_forwards(enc, monkeypatch)
    truncated: list[tuple[int, str, int]] = []
    prompts = ["a red fox", LONG_PROMPT, "a red fox", "snow", LONG_PROMPT]
    embeds = encode_prompts(enc, prompts, on_truncate=lambda *a: truncated.append(a))
    assert sum(calls) == 3  # rows encoded: one per unique prompt
    assert truncated == [(1, LONG_PROMPT, 600), (4, LONG_PROMPT, 600)]
    # Kept rows: the prompt's tokens incl. </s> ("a red fox": 9 + 1; "snow": 4 + 1), at most 512.
    assert [e.shape[1] for e in embeds] == [10, TEXT_LEN, 10, 5, TEXT_LEN]
    assert all(e.shape[::2] == (1, 32) for e in embeds)
    assert embeds[0] is embeds[2] and embeds[1] is embeds[4]
    assert embeds[0] is not embeds[3]
    assert bool((embeds[1][0].abs().sum(dim=-1) > 0).all())  # all 512 rows are real tokens
    # The dropped rows are exactly the zero padding; the kept ones equal the padded encoding.
    assert bool((fox_alone[:, 10:] == 0).all()) and bool((fox_alone[0, 9].abs() > 0).any())
    torch.testing.assert_close(embeds[0], fox_alone[:, :10], atol=1e-6, rtol=1e-6)
    # Each holds its own rows only (a slice would keep the 512-row tensor alive).
    assert embeds[0].untyped_storage().nbytes() == 10 * 32 * embeds[0].element_size()
    assert encode_prompts(enc, []) == []


def test_clean_prompt_matches_wan_whitespace_rule(enc, fox_alone):
    assert clean_prompt("  a\tred \n\n fox &amp;amp; ") == "a red fox &"
    assert enc.token_counts(["  a  b "]) == [4]
    torch.testing.assert_close(enc.encode(["  a  red\nfox "]), fox_alone, atol=0, rtol=0)


def test_bare_string_and_empty_rejected(enc):
    with pytest.raises(TypeError):
        enc.encode("a red fox")
    with pytest.raises(TypeError):
        encode_prompts(enc, "a red fox")
    with pytest.raises(ValueError, match="at least one prompt"):
        enc.encode([])


def test_save_load_round_trip(enc, pair_out, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc.save_pretrained(tmp_path)
    assert (tmp_path / "text_encoder" / "config.json").is_file()
    assert (tmp_path / "tokenizer" / "tokenizer.json").is_file()
    loaded = TextEncoder.from_pretrained(str(tmp_path), torch_dtype=torch.float32, device="cpu")
    prompts = [*PAIR, "héllo wörld ✓", LONG_PROMPT]
    assert loaded.token_counts(prompts) == enc.token_counts(prompts)
    assert torch.equal(loaded.encode(PAIR), pair_out)


def test_tokenizer_round_trip_offline(tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok = build_tiny_tokenizer()
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, len(tok)) == (0, 1, 2, 259)
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(str(tmp_path))
    text = "héllo wörld ✓"
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    assert again.decode(again(text)["input_ids"], skip_special_tokens=True) == text


def test_seed_determinism():
    a = build_tiny_text_encoder(seed=0).text_encoder.state_dict()
    b = build_tiny_text_encoder(seed=0).text_encoder.state_dict()
    c = build_tiny_text_encoder(seed=1).text_encoder.state_dict()
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["shared.weight"], c["shared.weight"])
    assert not torch.equal(
        a["encoder.block.0.layer.0.SelfAttention.q.weight"],
        c["encoder.block.0.layer.0.SelfAttention.q.weight"],
    )


def test_build_does_not_touch_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_text_encoder(seed=7)
    assert torch.equal(torch.rand(3), expected)
