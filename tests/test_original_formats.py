"""Original Wan2.1 release files (``Wan-AI/Wan2.1-T2V-1.3B``) load into the same models as diffusers folders.

* Text: ``models_t5_umt5-xxl-enc-bf16.pth`` (Wan2.1 ``wan/modules/t5.py`` ``T5Encoder`` keys, bfloat16) +
  the ``google/umt5-xxl/`` tokenizer folder, through ``TextEncoder.from_wan_checkpoint``, against the same
  weights saved by transformers (``text_encoder/`` + ``tokenizer/``) through ``TextEncoder.from_pretrained``.
* VAE: ``Wan2.1_VAE.pth`` (Wan2.1 ``wan/modules/vae.py`` ``WanVAE_`` keys) through ``load_vae``, against the
  same weights written by diffusers' ``save_pretrained``.

The original layouts are produced here by inverse key tables written from the official module structure
(not by inverting the project's own tables), so a wrong mapping in the loaders shows up as a key error or
as different outputs. Equality level: exact. Both sources end up as the same transformers / diffusers
module with bit-identical float32 parameters (the text weights are rounded to bfloat16 first, as in the
real bf16 file, so the bf16 → fp32 upcast is exact), so every computation is identical.
"""

from __future__ import annotations

import re
import socket

import pytest
import torch
from diffusers import AutoencoderKLWan
from safetensors.torch import save_file
from transformers import UMT5EncoderModel

from longlive_cli.decoders.wan import StreamingDecoder
from longlive_cli.models.umt5 import (
    TextEncoder,
    build_tiny_text_encoder,
    umt5_state_dict_from_wan,
    umt5_xxl_config,
)
from longlive_cli.models.vae import load_vae, tiny_vae_config

PROMPTS = ["a red fox", "snow falls on the quiet town at night, " * 6, "héllo wörld ✓", "x " * 300]


@pytest.fixture
def offline(monkeypatch):
    """HF_HUB_OFFLINE=1 and no sockets: any Hub lookup fails at once instead of silently succeeding."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# ---------------------------------------------------------------------- text encoder
def _to_wan_t5_layout(hf: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """transformers UMT5EncoderModel keys → Wan2.1 T5Encoder keys (umt5: one relative table per block).

    From wan/modules/t5.py: T5Encoder.token_embedding / .blocks[i] (T5SelfAttention: norm1, attn.{q,k,v,o},
    norm2, ffn (gate = Sequential(Linear, GELU), fc1, fc2), pos_embedding (T5RelativeEmbedding.embedding))
    / .norm. T5FeedForward computes fc1(x) * gate(x); transformers' gated FFN act(wi_0(x)) * wi_1(x).
    """
    wan = {
        "token_embedding.weight": hf["shared.weight"],
        "norm.weight": hf["encoder.final_layer_norm.weight"],
    }
    for i in range(num_layers):
        attn, ff = f"encoder.block.{i}.layer.0.", f"encoder.block.{i}.layer.1."
        wan[f"blocks.{i}.norm1.weight"] = hf[attn + "layer_norm.weight"]
        for name in "qkvo":
            wan[f"blocks.{i}.attn.{name}.weight"] = hf[f"{attn}SelfAttention.{name}.weight"]
        wan[f"blocks.{i}.pos_embedding.embedding.weight"] = hf[
            attn + "SelfAttention.relative_attention_bias.weight"
        ]
        wan[f"blocks.{i}.norm2.weight"] = hf[ff + "layer_norm.weight"]
        wan[f"blocks.{i}.ffn.gate.0.weight"] = hf[ff + "DenseReluDense.wi_0.weight"]
        wan[f"blocks.{i}.ffn.fc1.weight"] = hf[ff + "DenseReluDense.wi_1.weight"]
        wan[f"blocks.{i}.ffn.fc2.weight"] = hf[ff + "DenseReluDense.wo.weight"]
    # every transformers tensor is used once, except the embedding transformers keeps under two keys
    assert len(wan) == len(hf) - 1
    return wan


@pytest.fixture(scope="module")
def text_files(tmp_path_factory):
    """(diffusers-layout folder, Wan .pth in bfloat16, tokenizer folder) holding the same tiny UMT5."""
    root = tmp_path_factory.mktemp("text")
    enc = build_tiny_text_encoder(seed=3)
    with torch.no_grad():  # bf16-representable weights: the released file is bf16, the diffusers copy fp32
        for p in enc.text_encoder.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    enc.save_pretrained(root / "diffusers")
    wan = _to_wan_t5_layout(enc.text_encoder.state_dict(), enc.text_encoder.config.num_layers)
    pth = root / "models_t5_umt5-xxl-enc-bf16.pth"
    torch.save({k: v.to(torch.bfloat16).clone() for k, v in wan.items()}, pth)
    enc.tokenizer.save_pretrained(root / "google" / "umt5-xxl")
    return root / "diffusers", pth, root / "google" / "umt5-xxl", enc.text_encoder.config


def test_wan_checkpoint_embeds_equal_transformers_format(text_files, offline):
    folder, pth, tok, config = text_files
    ref = TextEncoder.from_pretrained(folder, torch_dtype=torch.float32)
    wan = TextEncoder.from_wan_checkpoint(pth, tok, config=config)
    assert wan.dtype == torch.float32  # default: float32 as LongLive, from a bf16 file
    assert wan.text_encoder.shared.weight is wan.text_encoder.encoder.embed_tokens.weight
    ref_sd, wan_sd = ref.text_encoder.state_dict(), wan.text_encoder.state_dict()
    assert ref_sd.keys() == wan_sd.keys()
    assert all(torch.equal(ref_sd[k], wan_sd[k]) for k in ref_sd)
    assert wan.token_counts(PROMPTS) == ref.token_counts(PROMPTS)
    out = wan.encode(PROMPTS)
    assert out.shape == (len(PROMPTS), 512, config.d_model)
    assert torch.equal(out, ref.encode(PROMPTS))


def test_wan_checkpoint_dtype_and_attention_options(text_files, offline):
    _, pth, tok, config = text_files
    enc = TextEncoder.from_wan_checkpoint(
        pth, tok, config=config.to_dict(), torch_dtype=torch.bfloat16, attn_implementation="eager"
    )
    assert enc.dtype == torch.bfloat16 and enc.text_encoder.config._attn_implementation == "eager"
    assert enc.text_dim == config.d_model  # dict config: overrides on umt5_xxl_config()


def test_wan_key_errors_name_the_key_and_file(text_files, tmp_path):
    _, pth, tok, config = text_files
    sd = torch.load(pth, weights_only=True)

    missing = tmp_path / "missing.pth"
    torch.save({k: v for k, v in sd.items() if k != "blocks.1.ffn.fc1.weight"}, missing)
    with pytest.raises(ValueError, match=r"missing\.pth.*Missing keys: blocks\.1\.ffn\.fc1\.weight;"):
        TextEncoder.from_wan_checkpoint(missing, tok, config=config)

    extra = tmp_path / "extra.pth"
    torch.save({**sd, "pos_embedding.embedding.weight": torch.zeros(8, 2)}, extra)
    with pytest.raises(ValueError, match=r"extra\.pth.*unexpected keys: pos_embedding\.embedding\.weight\."):
        TextEncoder.from_wan_checkpoint(extra, tok, config=config)

    shaped = tmp_path / "shaped.pth"
    torch.save({**sd, "norm.weight": torch.ones(7)}, shaped)
    with pytest.raises(ValueError, match=r"shaped\.pth.*norm\.weight \(7,\) \(model expects \(32,\)\)"):
        TextEncoder.from_wan_checkpoint(shaped, tok, config=config)

    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        TextEncoder.from_wan_checkpoint(tmp_path / "nope.pth", tok, config=config)


def test_umt5_state_dict_from_wan_renames_without_copies():
    hf = build_tiny_text_encoder(seed=0).text_encoder.state_dict()
    wan = _to_wan_t5_layout(hf, 2)
    out = umt5_state_dict_from_wan(wan)
    assert out.keys() == hf.keys()
    assert all(out[k] is wan_v for k, wan_v in zip(_keys_via_table(wan), wan.values(), strict=True))
    assert out["shared.weight"] is out["encoder.embed_tokens.weight"] is wan["token_embedding.weight"]
    with pytest.raises(ValueError, match=r"blocks\.0\.attn\.bias"):
        umt5_state_dict_from_wan({**wan, "blocks.0.attn.bias": torch.zeros(1)})


def _keys_via_table(wan: dict) -> list[str]:
    """First transformers key of each Wan key, from the same facts as _to_wan_t5_layout (read backwards)."""
    rev = {"token_embedding.weight": "shared.weight", "norm.weight": "encoder.final_layer_norm.weight"}
    sub = {
        "norm1.weight": "0.layer_norm.weight",
        "pos_embedding.embedding.weight": "0.SelfAttention.relative_attention_bias.weight",
        "norm2.weight": "1.layer_norm.weight",
        "ffn.gate.0.weight": "1.DenseReluDense.wi_0.weight",
        "ffn.fc1.weight": "1.DenseReluDense.wi_1.weight",
        "ffn.fc2.weight": "1.DenseReluDense.wo.weight",
        **{f"attn.{n}.weight": f"0.SelfAttention.{n}.weight" for n in "qkvo"},
    }
    keys = []
    for k in wan:
        m = re.fullmatch(r"blocks\.(\d+)\.(.+)", k)
        keys.append(f"encoder.block.{m[1]}.layer.{sub[m[2]]}" if m else rev[k])
    return keys


def test_umt5_xxl_config_is_wans_umt5_xxl():
    # wan/modules/t5.py umt5_xxl: vocab 256384, dim 4096 (= 64 heads x 64), ffn 10240, 24 layers, 32 buckets;
    # T5RelativeEmbedding max_dist 128; T5LayerNorm eps 1e-6; gated tanh-GELU FFN.
    cfg = umt5_xxl_config()
    got = (cfg.vocab_size, cfg.d_model, cfg.num_heads, cfg.d_kv, cfg.d_ff, cfg.num_layers)
    assert got == (256384, 4096, 64, 64, 10240, 24)
    assert (cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance) == (32, 128)
    assert (cfg.is_gated_act, cfg.dense_act_fn, cfg.layer_norm_epsilon) == (True, "gelu_new", 1e-6)
    with torch.device("meta"):
        model = UMT5EncoderModel(cfg)
    # 5,680,910,336 parameters x 2 bytes = the 11.4 GB models_t5_umt5-xxl-enc-bf16.pth
    assert sum(p.numel() for p in model.parameters()) == 5_680_910_336


# ---------------------------------------------------------------------- VAE
# The released Wan2.1 VAE's block layout (wan/modules/vae.py _video_vae: dim_mult [1, 2, 4, 4],
# num_res_blocks 2), which is the layout diffusers' converter knows; narrow (base_dim 4) to stay fast.
WAN21_LAYOUT = {**tiny_vae_config(), "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2}
# diffusers WanResidualBlock → Wan ResidualBlock (residual = Sequential(RMS_norm, SiLU, conv, RMS_norm, ...))
_RESNET = {
    "norm1.": "residual.0.",
    "conv1.": "residual.2.",
    "norm2.": "residual.3.",
    "conv2.": "residual.6.",
    "conv_shortcut.": "shortcut.",
}


def _resnet(rest: str) -> str:
    for diffusers_name, wan_name in _RESNET.items():
        if rest.startswith(diffusers_name):
            return wan_name + rest[len(diffusers_name) :]
    raise KeyError(rest)


def _wan_vae_key(key: str, num_res_blocks: int) -> str:
    """diffusers AutoencoderKLWan key → Wan2.1 WanVAE_ key (Encoder3d / Decoder3d of wan/modules/vae.py)."""
    if m := re.fullmatch(r"(post_quant_conv|quant_conv)\.(.+)", key):
        return {"quant_conv": "conv1", "post_quant_conv": "conv2"}[m[1]] + "." + m[2]
    side, rest = key.split(".", 1)
    if m := re.fullmatch(r"conv_in\.(.+)", rest):
        return f"{side}.conv1.{m[1]}"
    if m := re.fullmatch(r"norm_out\.(.+)", rest):
        return f"{side}.head.0.{m[1]}"
    if m := re.fullmatch(r"conv_out\.(.+)", rest):
        return f"{side}.head.2.{m[1]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d)\.(.+)", rest):  # middle = (res, attn, res)
        return f"{side}.middle.{2 * int(m[1])}.{_resnet(m[2])}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", rest):
        return f"{side}.middle.1.{m[1]}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.(resample|time_conv)(.+)", rest):
        return f"encoder.downsamples.{m[1]}.{m[2]}{m[3]}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.(.+)", rest):
        return f"encoder.downsamples.{m[1]}.{_resnet(m[2])}"
    # Decoder3d.upsamples is flat: per stage num_res_blocks + 1 residual blocks, then one Resample.
    stride = num_res_blocks + 2
    if m := re.fullmatch(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", rest):
        return f"decoder.upsamples.{int(m[1]) * stride + int(m[2])}.{_resnet(m[3])}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.(.+)", rest):
        return f"decoder.upsamples.{int(m[1]) * stride + num_res_blocks + 1}.{m[2]}"
    raise KeyError(key)


def _random_vae(config: dict, seed: int) -> AutoencoderKLWan:
    """Every parameter random and distinct (norm scales around 1), so a swapped tensor changes outputs."""
    gen = torch.Generator().manual_seed(seed)
    vae = AutoencoderKLWan(**config).eval()
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if name.endswith("gamma"):
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.15 if p.ndim > 1 else 0.05))
    return vae


def _original_vae_state_dict(vae: AutoencoderKLWan) -> dict[str, torch.Tensor]:
    r = vae.config.num_res_blocks
    sd = {_wan_vae_key(k, r): v.clone() for k, v in vae.state_dict().items()}
    assert len(sd) == len(vae.state_dict())
    return sd


@pytest.fixture(scope="module")
def vae_files(tmp_path_factory):
    """(diffusers pipeline folder with vae/, Wan2.1_VAE.pth, the source vae) with the same weights."""
    root = tmp_path_factory.mktemp("vae")
    vae = _random_vae(WAN21_LAYOUT, seed=5)
    vae.save_pretrained(root / "pipeline" / "vae")
    torch.save(_original_vae_state_dict(vae), root / "Wan2.1_VAE.pth")
    return root / "pipeline", root / "Wan2.1_VAE.pth", vae


def _decode_in_blocks(vae: AutoencoderKLWan, latents: torch.Tensor) -> torch.Tensor:
    dec = StreamingDecoder(vae)
    return torch.cat([dec.decode(latents[:, i : i + 2]) for i in range(0, latents.shape[1], 2)], dim=1)


def test_original_vae_decodes_equal_diffusers_folder(vae_files, offline):
    folder, pth, source = vae_files
    from_folder = load_vae(folder)  # pipeline folder → vae/
    from_pth = load_vae(pth, config=WAN21_LAYOUT)
    assert from_pth.dtype == torch.float32 and not from_pth.training
    want = source.state_dict()
    for vae in (from_folder, from_pth):
        got = vae.state_dict()
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)

    latents = torch.randn(1, 3, 16, 2, 3, generator=torch.Generator().manual_seed(2))  # [B, F, C, h, w]
    frames = _decode_in_blocks(from_pth, latents)
    assert frames.shape == (1, 9, 16, 24, 3)
    assert frames.float().std() > 0  # not saturated into a constant image
    assert torch.equal(frames, _decode_in_blocks(from_folder, latents))


def test_vae_folder_and_safetensors_forms(vae_files, tmp_path, offline):
    folder, pth, source = vae_files
    direct = load_vae(folder / "vae", torch_dtype=torch.float16)  # the model folder itself
    assert direct.dtype == torch.float16
    st = tmp_path / "wan_2.1_vae.safetensors"
    save_file(torch.load(pth, weights_only=True), str(st))
    from_st = load_vae(st, config=WAN21_LAYOUT)
    assert all(torch.equal(a, b) for a, b in zip(from_st.parameters(), source.parameters(), strict=True))


def test_vae_errors_name_file_and_keys(vae_files, tmp_path):
    folder, pth, _ = vae_files
    sd = torch.load(pth, weights_only=True)

    broken = tmp_path / "broken.pth"
    torch.save(
        {
            **{k: v for k, v in sd.items() if k != "decoder.head.2.bias"},
            "decoder.extra.weight": sd["conv2.bias"],
        },
        broken,
    )
    with pytest.raises(
        ValueError, match=r"broken\.pth.*missing decoder\.conv_out\.bias;.*unexpected decoder\.extra\.weight"
    ):
        load_vae(broken, config=WAN21_LAYOUT)

    # Default config = the real Wan2.1 VAE (base_dim 96): a narrow file names the first mismatching tensor.
    with pytest.raises(ValueError, match=r"Wan2\.1_VAE\.pth: tensor shapes .*decoder\.conv_in\.bias \(16,\)"):
        load_vae(pth)

    # diffusers' converter knows only Wan2.1's block layout; another depth is reported, not mis-loaded.
    tiny = _random_vae(tiny_vae_config(), seed=0)
    odd = tmp_path / "odd.pth"
    torch.save(_original_vae_state_dict(tiny), odd)
    with pytest.raises(
        ValueError, match=r"odd\.pth.*missing decoder\.up_blocks\.1\.upsamplers\.0\..*num_res_blocks=2"
    ):
        load_vae(odd, config=tiny_vae_config())

    with pytest.raises(ValueError, match="single-file"):
        load_vae(folder, config=WAN21_LAYOUT)
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_vae(tmp_path)
    with pytest.raises(FileNotFoundError, match="nope"):
        load_vae(tmp_path / "nope.pth")
