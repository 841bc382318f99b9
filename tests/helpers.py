"""What several test files share: a two-prompt storyboard, an MP4 frame reader, a pre-populated Hub cache, and
writers for tiny models in the official LongLive / Wan file formats.

The original Wan key layout is written from ``wan/modules/model.py`` (NVlabs/LongLive v1.0) and the
diffusers names by hand, independently of diffusers' converter. Generator files are
``{"generator": {"model." + wan_key: tensor}, "generator_ema": ...}``; LoRA files are peft state
dicts (``utils/lora_utils.py``).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import torch

from longlive_cli.models.loaders import tiny_transformer_config


def rel_err(a: torch.Tensor, b: torch.Tensor, *, norm: bool = False) -> float:
    """How far ``a`` is from the reference ``b``: ``max|a - b| / max|b|``, or with ``norm`` the whole
    tensors' ``||a - b|| / ||b||`` (L2)."""
    if norm:
        return ((a - b).norm() / b.norm()).item()
    return ((a - b).abs().max() / b.abs().max()).item()


# 2 s at 64x48 with a prompt switch at 1 s: 3 blocks, one re-cache.
LIGHTHOUSE_STORY = """\
duration: 2s
resolution: 64x48
prompts:
  - {at: 0s, text: a lighthouse at dusk}
  - {at: 1s, text: a lighthouse in a storm}
"""


def write_tiny_base(base: Path) -> Path:
    """The base model's folder of a tiny release, as the Hub repo lays it out: ``transformer/config.json``
    (the tiny transformer config), the tiny UMT5 text encoder and tokenizer, and ``vae/`` (seeded, so every
    test that writes one gets the same files). Returns ``base``."""
    import json

    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from longlive_cli.models.umt5 import build_tiny_text_encoder
    from longlive_cli.models.vae import tiny_vae_config

    (base / "transformer").mkdir(parents=True)
    (base / "transformer" / "config.json").write_text(json.dumps(dict(WanTransformer3DModel(**CFG).config)))
    build_tiny_text_encoder(seed=3).save_pretrained(base)
    torch.manual_seed(4)
    AutoencoderKLWan(**tiny_vae_config()).save_pretrained(base / "vae")
    return base


def mp4_frames(path: str | Path):
    """All frames of an MP4 as uint8 ``[T, H, W, 3]`` (numpy), decoded by imageio-ffmpeg's ffmpeg."""
    import imageio_ffmpeg
    import numpy as np

    reader = imageio_ffmpeg.read_frames(str(path))
    w, h = next(reader)["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])


def populate_hub_cache(repo: str, files: dict[str, Path], *, commit: str = "0" * 40) -> Path:
    """Lay ``files`` (path in repo -> local file or folder) out as huggingface-hub's cache holds a
    downloaded snapshot of ``repo`` (``models--owner--name/snapshots/<commit>/...``, ``refs/main``)."""
    from huggingface_hub import constants

    root = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / commit
    for name, src in files.items():
        dest = snapshot / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if Path(src).is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        else:
            shutil.copyfile(src, dest)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    return snapshot


CFG = tiny_transformer_config()
DIM = CFG["num_attention_heads"] * CFG["attention_head_dim"]
LINEARS = ("self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o")
LINEARS += (*tuple(n.replace("self_", "cross_") for n in LINEARS), "ffn.0", "ffn.2")


def wan_layout() -> dict[str, tuple[tuple[int, ...], str]]:
    """Original Wan name -> (shape, diffusers name) for the tiny config (Wan ``WanModel`` layout)."""
    d, f, ffn = DIM, CFG["freq_dim"], CFG["ffn_dim"]
    out = {
        "patch_embedding.weight": ((d, CFG["in_channels"], *CFG["patch_size"]), "patch_embedding.weight"),
        "patch_embedding.bias": ((d,), "patch_embedding.bias"),
        "time_projection.1.weight": ((6 * d, d), "condition_embedder.time_proj.weight"),
        "time_projection.1.bias": ((6 * d,), "condition_embedder.time_proj.bias"),
        "head.head.weight": ((math.prod(CFG["patch_size"]) * CFG["out_channels"], d), "proj_out.weight"),
        "head.head.bias": ((math.prod(CFG["patch_size"]) * CFG["out_channels"],), "proj_out.bias"),
        "head.modulation": ((1, 2, d), "scale_shift_table"),
    }
    for orig, new, fan_in in (
        ("text_embedding.0", "text_embedder.linear_1", CFG["text_dim"]),
        ("text_embedding.2", "text_embedder.linear_2", d),
        ("time_embedding.0", "time_embedder.linear_1", f),
        ("time_embedding.2", "time_embedder.linear_2", d),
    ):
        out[f"{orig}.weight"] = ((d, fan_in), f"condition_embedder.{new}.weight")
        out[f"{orig}.bias"] = ((d,), f"condition_embedder.{new}.bias")
    attn = {"self_attn": "attn1", "cross_attn": "attn2"}
    proj = {"q": "to_q", "k": "to_k", "v": "to_v", "o": "to_out.0"}
    for i in range(CFG["num_layers"]):
        b = f"blocks.{i}"
        out[f"{b}.modulation"] = ((1, 6, d), f"{b}.scale_shift_table")
        for a, da in attn.items():
            for p, dp in proj.items():
                out[f"{b}.{a}.{p}.weight"] = ((d, d), f"{b}.{da}.{dp}.weight")
                out[f"{b}.{a}.{p}.bias"] = ((d,), f"{b}.{da}.{dp}.bias")
            for n in ("norm_q", "norm_k"):
                out[f"{b}.{a}.{n}.weight"] = ((d,), f"{b}.{da}.{n}.weight")
        # Wan's norm3 (affine, before cross-attention) is diffusers' norm2.
        out[f"{b}.norm3.weight"] = ((d,), f"{b}.norm2.weight")
        out[f"{b}.norm3.bias"] = ((d,), f"{b}.norm2.bias")
        out[f"{b}.ffn.0.weight"] = ((ffn, d), f"{b}.ffn.net.0.proj.weight")
        out[f"{b}.ffn.0.bias"] = ((ffn,), f"{b}.ffn.net.0.proj.bias")
        out[f"{b}.ffn.2.weight"] = ((d, ffn), f"{b}.ffn.net.2.weight")
        out[f"{b}.ffn.2.bias"] = ((d,), f"{b}.ffn.net.2.bias")
    return out


LAYOUT = wan_layout()


def random_wan(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=g) for k, (shape, _) in LAYOUT.items()}


def random_lora(
    modules, rank: int, seed: int, *, fan_in=None
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for m in modules:
        o, i = LAYOUT[f"{m}.weight"][0]
        out[m] = (torch.randn(rank, fan_in or i, generator=g), torch.randn(o, rank, generator=g))
    return out


def peft_format(
    lora, adapter: str | None = None, prefix: str = "base_model.model."
) -> dict[str, torch.Tensor]:
    """The dict peft's get_peft_model_state_dict returns (adapter name dropped unless given)."""
    tag = f".{adapter}" if adapter else ""
    sd = {}
    for m, (a, b) in lora.items():
        sd[f"{prefix}{m}.lora_A{tag}.weight"] = a
        sd[f"{prefix}{m}.lora_B{tag}.weight"] = b
    return sd


def save_official(path, gen: dict, ema: dict | None = None, wrap=lambda k: "model." + k):
    ckpt = {"generator": {wrap(k): v for k, v in gen.items()}}
    if ema is not None:
        ckpt["generator_ema"] = {wrap(k): v for k, v in ema.items()}
    torch.save(ckpt, path)
    return path
