"""The default model at real scale, offline, as a user runs it: stand-in weight files with the real shapes,
key names, dtypes and formats in a temporary Hugging Face cache, then the CLI.

Writes (random values, about 20.4 GB; nothing is downloaded):

* ``Wan-AI/Wan2.1-T2V-1.3B:models_t5_umt5-xxl-enc-bf16.pth``: UMT5-XXL encoder, Wan's ``T5Encoder`` keys,
  bfloat16, ``torch.save`` zip (11.36 GB);
* ``Wan-AI/Wan2.1-T2V-1.3B:Wan2.1_VAE.pth``: the Wan2.1 VAE (``AutoencoderKLWan()`` defaults) in Wan's
  ``WanVAE_`` keys, float32 (508 MB);
* ``Wan-AI/Wan2.1-T2V-1.3B-Diffusers:transformer/config.json``: the 1.3B transformer config;
* ``Efficient-Large-Model/LongLive-1.3B:models/longlive_base.pt``: ``{"generator": {"model." + Wan key:
  float32}}`` (5.68 GB);
* ``Efficient-Large-Model/LongLive-1.3B:models/lora.pt``: ``{"generator_lora": peft dict, "critic_lora":
  peft dict}``, rank 256 on every attention and FFN Linear, float32 (2.80 GB: the real file's size is twice
  the generator LoRA's 1.40 GB; a second adapter of the same shapes is this stand-in's guess at the rest);
* ``Wan-AI/Wan2.1-T2V-1.3B:google/umt5-xxl/``: a stand-in tokenizer (the project's byte-level test
  tokenizer: the real one cannot be downloaded here); token ids stay below the real vocabulary.

Tensors are written from disk-backed storages, so writing holds no more than a few hundred MB in memory.
Then, each in a fresh process with ``HF_HUB_OFFLINE=1`` and a fresh ``LONGLIVE_CACHE``, it runs:

1. ``longlive download --offline`` (lists the six parts);
2. ``longlive generate`` of a short two-prompt storyboard at a small resolution with the default options
   (first run: converts the generator, encodes the prompts);
3. the same again (the converted weights and the prompt embeddings come from the caches);
4. the same with ``--no-embed-cache`` (the text encoder is loaded again);
5. 3 and 4 again, in that order (this machine's speed drifts: the pairs are compared);
7. a live session's text encoder (``LongLive.text_encoder(keep=True)`` on the CPU, then
   ``encode_prompt`` of three new prompts, embedding cache off): load time and prompt-to-embedding latency;

and prints, per step, the wall time, the time to the start of generation (from the process start to the
``generation_started`` event: imports, memory check, prompts, model loading), the time to the first frame
(to the first ``block_done`` event) and the peak RSS (``VmHWM`` of that process). The folder is deleted at
the end unless ``--keep``.

    python benchmarks/realscale.py --root /work/realscale-tmp
    python benchmarks/realscale.py --root /work/realscale-tmp --resolution 160x96 --keep --skip-write
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from longlive_cli.memory import human_bytes  # noqa: E402
from longlive_cli.models.spec import wan_1_3b_transformer_config  # noqa: E402

COMMIT = "0" * 40
STORY = """\
seed: 7
duration: 1.5s
prompts:
  - {at: 0s, text: "A little boy in a blue T-shirt stands on a lush green lawn, holding a red ball."}
  - {at: 0.75s, text: "The boy throws the red ball and a golden retriever runs after it."}
"""


# ---------------------------------------------------------------------- layouts
def umt5_xxl_layout() -> dict[str, tuple[int, ...]]:
    """Wan2.1 ``wan/modules/t5.py`` ``T5Encoder`` (umt5-xxl, encoder only, ``shared_pos=False``) shapes."""
    v, d, f, heads, buckets, layers = 256384, 4096, 10240, 64, 32, 24
    out: dict[str, tuple[int, ...]] = {"token_embedding.weight": (v, d), "norm.weight": (d,)}
    for i in range(layers):
        b = f"blocks.{i}"
        out[f"{b}.norm1.weight"] = (d,)
        for n in "qkvo":
            out[f"{b}.attn.{n}.weight"] = (d, d)
        out[f"{b}.norm2.weight"] = (d,)
        out[f"{b}.ffn.gate.0.weight"] = (f, d)
        out[f"{b}.ffn.fc1.weight"] = (f, d)
        out[f"{b}.ffn.fc2.weight"] = (d, f)
        out[f"{b}.pos_embedding.embedding.weight"] = (buckets, heads)
    return out


def wan_transformer_layout(cfg: dict) -> dict[str, tuple[int, ...]]:
    """Original Wan ``WanModel`` (``wan/modules/model.py``) shapes for a text-to-video config."""
    d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    f, ffn, text, p = cfg["freq_dim"], cfg["ffn_dim"], cfg["text_dim"], tuple(cfg["patch_size"])
    out_dim = p[0] * p[1] * p[2] * cfg["out_channels"]
    out: dict[str, tuple[int, ...]] = {
        "patch_embedding.weight": (d, cfg["in_channels"], *p),
        "patch_embedding.bias": (d,),
        "text_embedding.0.weight": (d, text),
        "text_embedding.0.bias": (d,),
        "text_embedding.2.weight": (d, d),
        "text_embedding.2.bias": (d,),
        "time_embedding.0.weight": (d, f),
        "time_embedding.0.bias": (d,),
        "time_embedding.2.weight": (d, d),
        "time_embedding.2.bias": (d,),
        "time_projection.1.weight": (6 * d, d),
        "time_projection.1.bias": (6 * d,),
        "head.head.weight": (out_dim, d),
        "head.head.bias": (out_dim,),
        "head.modulation": (1, 2, d),
    }
    for i in range(cfg["num_layers"]):
        b = f"blocks.{i}"
        out[f"{b}.modulation"] = (1, 6, d)
        for a in ("self_attn", "cross_attn"):
            for n in "qkvo":
                out[f"{b}.{a}.{n}.weight"] = (d, d)
                out[f"{b}.{a}.{n}.bias"] = (d,)
            out[f"{b}.{a}.norm_q.weight"] = (d,)
            out[f"{b}.{a}.norm_k.weight"] = (d,)
        out[f"{b}.norm3.weight"] = (d,)
        out[f"{b}.norm3.bias"] = (d,)
        out[f"{b}.ffn.0.weight"] = (ffn, d)
        out[f"{b}.ffn.0.bias"] = (ffn,)
        out[f"{b}.ffn.2.weight"] = (d, ffn)
        out[f"{b}.ffn.2.bias"] = (d,)
    return out


def lora_layout(cfg: dict, rank: int = 256) -> dict[str, tuple[int, ...]]:
    """peft keys of LongLive's LoRA: every Linear inside the attention blocks, rank ``rank``."""
    layout = wan_transformer_layout(cfg)
    out: dict[str, tuple[int, ...]] = {}
    for i in range(cfg["num_layers"]):
        for m in [f"{a}.{n}" for a in ("self_attn", "cross_attn") for n in "qkvo"] + ["ffn.0", "ffn.2"]:
            o, n_in = layout[f"blocks.{i}.{m}.weight"]
            out[f"base_model.model.blocks.{i}.{m}.lora_A.weight"] = (rank, n_in)
            out[f"base_model.model.blocks.{i}.{m}.lora_B.weight"] = (o, rank)
    return out


def wan_vae_key(key: str, num_res_blocks: int = 2) -> str:
    """diffusers ``AutoencoderKLWan`` key -> Wan2.1 ``WanVAE_`` key (``wan/modules/vae.py``)."""

    def resnet(rest: str) -> str:
        table = {
            "norm1.gamma": "residual.0.gamma",
            "conv1": "residual.2",
            "norm2.gamma": "residual.3.gamma",
            "conv2": "residual.6",
            "conv_shortcut": "shortcut",
        }
        for k, v in table.items():
            if rest.startswith(k):
                return v + rest[len(k) :]
        return rest

    if m := re.fullmatch(r"(post_quant_conv|quant_conv)\.(.+)", key):
        return {"quant_conv": "conv1", "post_quant_conv": "conv2"}[m[1]] + "." + m[2]
    side, rest = key.split(".", 1)
    if m := re.fullmatch(r"conv_in\.(.+)", rest):
        return f"{side}.conv1.{m[1]}"
    if m := re.fullmatch(r"norm_out\.(.+)", rest):
        return f"{side}.head.0.{m[1]}"
    if m := re.fullmatch(r"conv_out\.(.+)", rest):
        return f"{side}.head.2.{m[1]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d)\.(.+)", rest):
        return f"{side}.middle.{2 * int(m[1])}.{resnet(m[2])}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", rest):
        return f"{side}.middle.1.{m[1]}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.(resample|time_conv)(.+)", rest):
        return f"encoder.downsamples.{m[1]}.{m[2]}{m[3]}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.(.+)", rest):
        return f"encoder.downsamples.{m[1]}.{resnet(m[2])}"
    stride = num_res_blocks + 2
    if m := re.fullmatch(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", rest):
        return f"decoder.upsamples.{int(m[1]) * stride + int(m[2])}.{resnet(m[3])}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.(.+)", rest):
        return f"decoder.upsamples.{int(m[1]) * stride + num_res_blocks + 1}.{m[2]}"
    raise KeyError(key)


# ---------------------------------------------------------------------- writing
_SCRATCH = itertools.count()
_ONES = ("norm1.weight", "norm2.weight", "norm.weight", "norm_q.weight", "norm_k.weight", "norm3.weight")


def random_tensor(
    shape: tuple[int, ...], name: str, *, dtype: torch.dtype, std: float, scratch: Path, gen: torch.Generator
) -> torch.Tensor:
    """A tensor of ``shape`` whose storage is a shared mapping of its own (already unlinked) scratch file, so
    its pages can go back to disk: random normal values times ``std``; 1-D norm scales are ones and other
    1-D tensors (biases) zeros."""
    n = int(torch.Size(shape).numel())
    scratch.mkdir(parents=True, exist_ok=True)
    backing = scratch / f"{next(_SCRATCH)}.bin"
    with backing.open("wb") as f:
        f.truncate(n * torch.empty((), dtype=dtype).element_size())
    t = torch.from_file(str(backing), shared=True, size=n, dtype=dtype)
    backing.unlink()  # the mapping keeps the pages; the disk space goes when the tensor does
    if len(shape) == 1:
        t.fill_(1.0 if name.endswith(_ONES) else 0.0)
    else:
        for start in range(0, n, 1 << 24):  # 16 M values at a time
            stop = min(n, start + (1 << 24))
            t[start:stop] = (torch.randn(stop - start, generator=gen) * std).to(dtype)
    return t.view(shape)


def write_checkpoint(
    path: Path, layout: dict, *, dtype: torch.dtype, std: float, scratch: Path, seed: int, prefix: str = ""
) -> None:
    """``torch.save`` random tensors laid out as ``layout`` (name -> shape, or entry -> {name -> shape}), one
    storage per tensor as ``torch.save(model.state_dict())`` writes them."""
    gen = torch.Generator().manual_seed(seed)

    def build(d: dict) -> dict:
        return {
            k: build(v)
            if isinstance(v, dict)
            else random_tensor(v, k, dtype=dtype, std=std, scratch=scratch, gen=gen)
            for k, v in d.items()
        }

    def rename(d: dict) -> dict:  # the prefix goes on tensor names only
        return {
            k if isinstance(v, dict) else prefix + k: rename(v) if isinstance(v, dict) else v
            for k, v in d.items()
        }

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(rename(build(layout)), path)


def write_standins(hub: Path, scratch: Path) -> dict[str, int]:
    """The six parts of ``longlive-1.3b`` in a Hugging Face cache at ``hub``; returns bytes per file."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from longlive_cli.models.umt5 import build_tiny_tokenizer

    def snapshot(repo: str) -> Path:
        root = hub / f"models--{repo.replace('/', '--')}"
        (root / "refs").mkdir(parents=True, exist_ok=True)
        (root / "refs" / "main").write_text(COMMIT)
        return root / "snapshots" / COMMIT

    wan, diffusers_base, longlive = (
        snapshot("Wan-AI/Wan2.1-T2V-1.3B"),
        snapshot("Wan-AI/Wan2.1-T2V-1.3B-Diffusers"),
        snapshot("Efficient-Large-Model/LongLive-1.3B"),
    )
    cfg = wan_1_3b_transformer_config()
    sizes: dict[str, int] = {}
    steps = [
        ("models_t5_umt5-xxl-enc-bf16.pth", wan, umt5_xxl_layout(), torch.bfloat16, 0.02, ""),
        (
            "models/longlive_base.pt",
            longlive,
            {"generator": wan_transformer_layout(cfg)},
            torch.float32,
            0.02,
            "model.",
        ),
        (
            "models/lora.pt",
            longlive,
            {"generator_lora": lora_layout(cfg), "critic_lora": lora_layout(cfg)},
            torch.float32,
            0.002,
            "",
        ),
    ]
    for name, folder, layout, dtype, std, prefix in steps:
        t = time.perf_counter()
        write_checkpoint(
            folder / name, layout, dtype=dtype, std=std, scratch=scratch, seed=len(sizes), prefix=prefix
        )
        sizes[name] = (folder / name).stat().st_size
        print(f"  wrote {name}: {human_bytes(sizes[name])} in {time.perf_counter() - t:.0f} s", flush=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        vae = AutoencoderKLWan()
    torch.save({wan_vae_key(k): v.clone() for k, v in vae.state_dict().items()}, wan / "Wan2.1_VAE.pth")
    sizes["Wan2.1_VAE.pth"] = (wan / "Wan2.1_VAE.pth").stat().st_size
    del vae
    with torch.device("meta"):
        config = dict(WanTransformer3DModel(**cfg).config)
    (diffusers_base / "transformer").mkdir(parents=True, exist_ok=True)
    (diffusers_base / "transformer" / "config.json").write_text(json.dumps(config, default=list))
    build_tiny_tokenizer().save_pretrained(wan / "google" / "umt5-xxl")
    return sizes


# ---------------------------------------------------------------------- running
def _watch_hwm(proc: subprocess.Popen, peak: list[int]) -> None:
    """Keep ``peak[0]`` at the child's ``VmHWM`` (its own peak RSS since exec) until it exits. Not
    ``ru_maxrss``: Linux charges a child with its parent's peak at exec (``exec_mmap``), and this script's
    is large after writing the stand-ins."""
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]) * 1024)
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.05)


# A live session's text encoder on the CPU: load it once (kept), then encode new prompts one by one.
LIVE = """
import json, sys, time
from longlive_cli import LongLive
ll = LongLive.from_pretrained("longlive-1.3b", device="cpu", offline=True, embed_cache=False)
place = ll.text_encoder_placement()
t = time.perf_counter(); ll.text_encoder(keep=True, resolution=(128, 80)); load = time.perf_counter() - t
times = []
for text in ("a kite over the sea", "the kite dives toward the waves, spray in the sunlight", "night falls"):
    t = time.perf_counter(); ll.encode_prompt(text); times.append(time.perf_counter() - t)
print(json.dumps({"placement": [place.device, str(place.dtype)], "load_s": load, "encode_s": times}))
"""


def run_step(name: str, args: list[str], env: dict[str, str], log: Path) -> dict:
    """Run ``longlive ARGS`` (or, for ``["--python", CODE]``, that code) in a fresh process: its wall time,
    the time to the first ``block_done`` event, its peak RSS and its last JSON line that is not an event."""
    if args[0] == "--python":
        cmd = [sys.executable, "-c", args[1]]
    else:
        cmd = [sys.executable, "-c", "from longlive_cli.cli import main; main()", *args]
    other: dict = {}
    start = time.perf_counter()
    first = started = None
    peak = [0]
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, cwd=ROOT, text=True)
        watcher = threading.Thread(target=_watch_hwm, args=(proc, peak), daemon=True)
        watcher.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("{"):
                record = json.loads(line)
                if started is None and record.get("event") == "generation_started":
                    started = time.perf_counter() - start
                if first is None and record.get("event") == "block_done":
                    first = time.perf_counter() - start
                if "event" not in record:
                    other = record
            else:
                print(f"    {line.rstrip()}", flush=True)
        code = proc.wait()
        watcher.join()
    wall = time.perf_counter() - start
    return {
        "step": name,
        "exit": code,
        "wall_s": wall,
        "start_s": started,
        "first_frame_s": first,
        "peak_rss": peak[0],
        **other,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, required=True, help="working folder (about 21 GB free needed)")
    parser.add_argument("--resolution", default="128x80")
    parser.add_argument("--keep", action="store_true", help="keep the folder (stand-ins and caches)")
    parser.add_argument("--skip-write", action="store_true", help="reuse stand-ins written by an earlier run")
    opts = parser.parse_args()

    root: Path = opts.root
    hub, cache = root / "hub", root / "longlive-cache"
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if not opts.skip_write:
        if free < 42e9:  # the files plus their scratch copies while writing
            sys.exit(f"{root}: {human_bytes(free)} free; writing the stand-ins needs about 42 GB")
        shutil.rmtree(hub, ignore_errors=True)
        t = time.perf_counter()
        print(f"writing stand-ins into {hub}", flush=True)
        sizes = write_standins(hub, root / "scratch")
        shutil.rmtree(root / "scratch", ignore_errors=True)
        print(f"  {human_bytes(sum(sizes.values()))} in {time.perf_counter() - t:.0f} s", flush=True)
    shutil.rmtree(cache, ignore_errors=True)
    story = root / "story.yaml"
    story.write_text(STORY)
    env = {**os.environ, "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1", "LONGLIVE_CACHE": str(cache)}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    gen = ["generate", str(story), "--resolution", opts.resolution, "--offline", "--json", "--debug", "-f"]
    steps = [
        ("download --offline", ["download", "--offline"]),
        ("generate, first run", [*gen, "-o", str(root / "first.mp4")]),
        ("generate, second run", [*gen, "-o", str(root / "second.mp4")]),
        ("generate --no-embed-cache", [*gen, "-o", str(root / "third.mp4"), "--no-embed-cache"]),
        ("generate, cached again", [*gen, "-o", str(root / "fourth.mp4")]),
        ("generate --no-embed-cache again", [*gen, "-o", str(root / "fifth.mp4"), "--no-embed-cache"]),
        ("live: keep encoder, 3 prompts", ["--python", LIVE]),
    ]
    results = []
    for name, args in steps:
        print(f"$ longlive {' '.join(args)}" if args[0] != "--python" else f"$ python: {name}", flush=True)
        log = root / f"step{len(results) + 1}.log"
        results.append(run_step(name, args, env, log))
        for line in log.read_text().splitlines():
            keys = ("memory estimate", "  ", "precision", "loaded", "encoded", "error", "wrote", "Wrote")
            if any(k in line for k in keys):
                print(f"    {line}", flush=True)
        if results[-1]["exit"] != 0:
            print(log.read_text()[-3000:])
            break
    print(
        f"\nlonglive-1.3b stand-ins, {opts.resolution}, 1.5 s (2 blocks, 2 prompts), default options, offline"
    )
    print(f"{'step':<32} {'exit':>4} {'wall s':>7} {'start s':>8} {'1st frame s':>12} {'peak RSS':>10}")
    for r in results:
        start, first = (f"{r[k]:.1f}" if r.get(k) is not None else "-" for k in ("start_s", "first_frame_s"))
        print(
            f"{r['step']:<32} {r['exit']:>4} {r['wall_s']:>7.1f} {start:>8} {first:>12} "
            f"{r['peak_rss'] / 2**30:>6.2f} GiB"
        )
    for r in results:
        if "encode_s" in r:
            encodes = ", ".join(f"{t:.1f}" for t in r["encode_s"])
            print(
                f"live text encoder on {r['placement']}: loaded in {r['load_s']:.1f} s; "
                f"new prompts in {encodes} s"
            )
    print(json.dumps(results))
    if not opts.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
