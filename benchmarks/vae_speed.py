"""The Wan VAE decoder's speed options side by side: plain, cuDNN autotuning, channels-last, compiled, all.

Issue 15 point 9 asks whether ``torch.backends.cudnn.benchmark``, the ``channels_last_3d`` memory format and
compiling the per-latent-frame decode (``RuntimeOptions.compile_decoder``, ``--compile-decoder``) pay. This
measures them on one VAE, side by side in one process:

* the Wan2.1 VAE at its real size (diffusers ``AutoencoderKLWan()`` defaults) with seeded RANDOM weights (no
  weights can be downloaded here; speed does not depend on the values), and the same seeded random latents;
* variants: ``plain`` (:class:`StreamingDecoder` as the pipeline runs it by default), ``cudnn-benchmark``
  (the flag on), ``channels-last`` (a copy of the VAE whose convolution weights are ``channels_last_3d`` /
  ``channels_last``; activations follow the weights' layout), ``compile`` (``compile_decoder=True``), ``all``
  (the three together);
* every variant first decodes one warm-up video (compilation, cuDNN autotuning: the "warm-up s" column), then
  ``--rounds`` rounds in which each variant in turn decodes a video of ``--blocks`` blocks (3 latent frames
  each, as the pipeline hands them over), so drift of the machine hits every variant alike.

Per variant it prints the median wall time of the steady blocks (all but each video's first, which decodes 9
frames instead of 12), that median relative to ``plain``, the largest difference of its uint8 frames from
``plain``'s (cuDNN's algorithms and Inductor's kernels round differently; 0-2 steps is rounding), the peak
memory above the weights (CUDA: ``max_memory_allocated``; not measured on the CPU) and the warm-up time.
Each block ends with the frames on the host (``StreamingDecoder.decode`` returns them on the CPU), so a
block's time includes the copy and needs no explicit synchronization.

    python benchmarks/vae_speed.py --device cuda --dtype bf16                       # 832x480 on a GPU
    python benchmarks/vae_speed.py --resolution 160x96 --blocks 3 --rounds 2        # CPU, quick
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from longlive_cli.logs import quiet_noisy_imports

quiet_noisy_imports()
from diffusers import AutoencoderKLWan  # noqa: E402

from longlive_cli.decoders.wan import StreamingDecoder  # noqa: E402
from longlive_cli.runtime import RuntimeOptions  # noqa: E402

DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
FRAMES_PER_BLOCK = 3  # latent frames
VARIANTS = ("plain", "cudnn-benchmark", "channels-last", "compile", "all")


def channels_last_copy(vae: AutoencoderKLWan) -> AutoencoderKLWan:
    """A copy of ``vae`` whose 3D convolution weights are ``channels_last_3d`` and 2D ones ``channels_last``
    (``Module.to(memory_format=...)`` cannot do both: it applies one format to 4-D and 5-D tensors alike)."""
    out = copy.deepcopy(vae)
    for m in out.modules():
        if isinstance(m, torch.nn.Conv3d):
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last_3d)
        elif isinstance(m, torch.nn.Conv2d):
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)
    return out


def decode_video(decoder: StreamingDecoder, latents: torch.Tensor, cudnn_benchmark: bool):
    """Decode ``latents`` block by block from a fresh stream: (seconds per block, uint8 frames)."""
    torch.backends.cudnn.benchmark = cudnn_benchmark
    decoder.reset()
    times, frames = [], []
    for first in range(0, latents.shape[1], FRAMES_PER_BLOCK):
        t0 = time.perf_counter()
        frames.append(decoder.decode(latents[:, first : first + FRAMES_PER_BLOCK]))  # on the host: synced
        times.append(time.perf_counter() - t0)
    return times, torch.cat(frames, dim=1)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", default="832x480", help="WIDTHxHEIGHT in pixels (default 832x480)")
    ap.add_argument("--blocks", type=int, default=4, help="blocks of 3 latent frames per video (>= 2)")
    ap.add_argument("--rounds", type=int, default=3, help="measured videos per variant")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=DTYPES, default="bf16" if torch.cuda.is_available() else "float32")
    ap.add_argument("--compile-backend", default="inductor", help="torch.compile backend (default inductor)")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    if args.blocks < 2:
        sys.exit("--blocks must be at least 2 (the first block of a video is not a steady one)")
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    width, height = map(int, args.resolution.lower().split("x"))
    torch.manual_seed(args.seed)
    vae = AutoencoderKLWan()
    vae = (vae.to(device) if dtype == torch.float32 else vae.to(device=device, dtype=dtype)).eval()
    vae.requires_grad_(False)
    gen = torch.Generator().manual_seed(args.seed)
    latents = torch.randn(1, FRAMES_PER_BLOCK * args.blocks, 16, height // 8, width // 8, generator=gen)

    names = ["plain", *[v for v in args.variants if v != "plain"]]
    last = channels_last_copy(vae) if {"channels-last", "all"} & set(names) else None
    compiled = RuntimeOptions(compile_decoder=True, compile_backend=args.compile_backend)
    setups = {  # name -> (decoder, cudnn.benchmark)
        "plain": (StreamingDecoder(vae), False),
        "cudnn-benchmark": (StreamingDecoder(vae), True),
        "channels-last": (StreamingDecoder(last or vae), False),
        "compile": (StreamingDecoder(vae, options=compiled), False),
        "all": (StreamingDecoder(last or vae, options=compiled), True),
    }
    cuda = device.type == "cuda"
    where = torch.cuda.get_device_name(device) if cuda else f"{torch.get_num_threads()} threads"
    print(
        f"Wan VAE decode on {device.type} ({where}), {args.dtype}, {width}x{height}, {args.blocks} blocks x "
        f"{FRAMES_PER_BLOCK} latent frames, {args.rounds} rounds; torch {torch.__version__}; random weights"
    )
    warmup, steady, frames, peak = {}, {n: [] for n in names}, {}, {}
    for name in names:
        t0 = time.perf_counter()
        decode_video(setups[name][0], latents, setups[name][1])
        warmup[name] = time.perf_counter() - t0
    for _ in range(args.rounds):
        for name in names:
            if cuda:
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
            times, frames[name] = decode_video(setups[name][0], latents, setups[name][1])
            steady[name] += times[1:]
            if cuda:
                added = (torch.cuda.max_memory_allocated(device) - base) / 2**20
                peak[name] = max(peak.get(name, 0.0), added)
    torch.backends.cudnn.benchmark = False

    plain_ms = statistics.median(steady["plain"]) * 1000
    print(
        f"\n{'variant':<16} {'block ms':>9} {'vs plain':>8} {'max |diff|':>10} {'peak MiB':>9} "
        f"{'warm-up s':>9}"
    )
    for name in names:
        ms = statistics.median(steady[name]) * 1000
        diff = (frames[name].int() - frames["plain"].int()).abs().max().item()
        mem = f"{peak[name]:9.0f}" if name in peak else f"{'-':>9}"
        fell = f"  fell back: {setups[name][0].fallbacks}" if setups[name][0].fallbacks else ""
        print(f"{name:<16} {ms:>9.1f} {plain_ms / ms:>7.2f}x {diff:>10} {mem} {warmup[name]:>9.1f}{fell}")
    summary = ", ".join(
        f"{n} {plain_ms / (statistics.median(steady[n]) * 1000):.2f}x" for n in names if n != "plain"
    )
    print(f"summary: plain {plain_ms:.1f} ms/block; {summary}")


if __name__ == "__main__":
    main()
