"""Decoders side by side: Wan VAE, LightVAE, TAEHV, LightTAE: time per block, peak memory, frames vs Wan.

Every decoder is built at its REAL size with RANDOM weights (no weights can be downloaded here):

* ``wan``: diffusers ``AutoencoderKLWan()`` defaults (the Wan2.1 VAE, as ``decode.load_vae`` builds it for
  ``Wan2.1_VAE.pth``), decoded by ``decode.StreamingDecoder``;
* ``lightvae``: ``AutoencoderKLWan(base_dim=24)`` (``lightvaew2_1``: the Wan2.1 VAE pruned by 0.75), same
  decoder class;
* ``taehv``: ``TAEHVDecoder()`` at widths (256, 128, 64, 64) (``taew2_1``), ``StreamingTAEHVDecoder``;
* ``lighttae``: the same network and weights as ``taehv`` with LightTAE's input de-normalisation.

All decode the same seeded random normalised latents ``[1, 3·blocks, 16, H/8, W/8]`` block by block (3 latent
frames per block, as the pipeline hands them over). Per decoder and resolution it prints the parameter size,
the time of the first block (9 frames) and the median over the later blocks (12 frames each; "-" with one
block), the frames per second that median gives, the peak memory the decode adds (CPU: RSS sampled every 2 ms
above the RSS before the first block, after ``malloc_trim``; CUDA: ``max_memory_allocated`` above the
allocation before the first block; each decoder runs in a fresh process after a warm-up on a tiny video, so
neither another decoder's freed memory nor the libraries' first-use allocations count), and the mean
absolute difference of its uint8 frames from the Wan VAE's on the frames both decoded. With random weights
and random latents that difference says NOTHING about quality; it only shows that the decoders produce
frames of the same shape.

A decoder stops after the block that takes it past ``--max-seconds`` (at least one block), so the Wan VAE at
832x480 on a small CPU (minutes per block) does not run for long; its time per block is then the first
block's.

    python benchmarks/decoders.py                                    # CPU: both resolutions, 2 blocks
    python benchmarks/decoders.py --resolutions 320x192 --blocks 4   # CPU, quick
    python benchmarks/decoders.py --device cuda --dtype bf16 --blocks 8
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from longlive_cli.logs import quiet_noisy_imports

quiet_noisy_imports()
import diffusers  # noqa: E402
from diffusers import AutoencoderKLWan  # noqa: E402

from longlive_cli.decoders import make_decoder  # noqa: E402
from longlive_cli.decoders.lightvae import lightvae_config  # noqa: E402
from longlive_cli.decoders.taehv import TAEHVDecoder, init_random_  # noqa: E402

DECODERS = ("wan", "lightvae", "taehv", "lighttae")
DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
FRAMES_PER_BLOCK = 3  # latent frames


# ------------------------------------------------------------------------------------------ memory
def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _malloc_trim() -> None:
    """Return freed heap pages to the OS so the RSS before a run is not inflated by the previous one."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakMemory:
    """Peak memory added inside the ``with`` block, in MiB (see the module docstring for how)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_mib = 0.0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device) / 2**20
        else:
            _malloc_trim()
            self._base = self._max = _rss_mib()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._max = max(self._max, _rss_mib())

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mib = torch.cuda.max_memory_allocated(self.device) / 2**20 - self._base
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mib = max(self._max, _rss_mib()) - self._base


# ------------------------------------------------------------------------------------------ decoders
def build(name: str, device: torch.device, dtype: torch.dtype, seed: int) -> tuple[Callable, float]:
    """A fresh streaming decoder for ``name`` (real size, seeded random weights), warmed up, and its weights'
    size in MiB."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name in ("wan", "lightvae"):
            model = AutoencoderKLWan(**({} if name == "wan" else lightvae_config()))
        else:
            model = init_random_(TAEHVDecoder(variant=name), seed)  # taehv and lighttae: the same weights
    # Cast only when asked: diffusers warns about .to(dtype) on AutoencoderKLWan even to float32.
    model = model.to(device) if dtype == torch.float32 else model.to(device=device, dtype=dtype)
    model = model.eval().requires_grad_(False)
    mib = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    decoder = make_decoder(name, model)  # the streaming decoder the registry declares for the name
    # Warm up on a tiny video (the libraries' first-use allocations are not the decoder's memory), then reset.
    decoder.decode(torch.zeros(1, 2, 16, 2, 2, device=device, dtype=dtype))
    decoder.reset()
    return decoder.decode, mib


def run(name: str, res: str, args: argparse.Namespace) -> dict:
    """One decoder at one resolution, in this process: block times, peak memory, frames."""
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    width, height = map(int, res.lower().split("x"))
    gen = torch.Generator().manual_seed(args.seed)  # the same latents in every worker
    latents = torch.randn(1, FRAMES_PER_BLOCK * args.blocks, 16, height // 8, width // 8, generator=gen)
    decode, mib = build(name, device, dtype, args.seed)
    times, frames = [], []
    start = time.perf_counter()
    with PeakMemory(device) as mem:
        for first in range(0, latents.shape[1], FRAMES_PER_BLOCK):
            t0 = time.perf_counter()
            frames.append(decode(latents[:, first : first + FRAMES_PER_BLOCK]))  # uint8 on the CPU: synced
            times.append(time.perf_counter() - t0)
            if time.perf_counter() - start > args.max_seconds:
                break
    return {"weights_mib": mib, "block_s": times, "peak_mib": mem.peak_mib, "frames": torch.cat(frames, 1)}


def run_in_subprocess(name: str, res: str, args: argparse.Namespace, out: Path) -> dict:
    """:func:`run` in a fresh process (so its peak memory is its own), result through a file."""
    cmd = [sys.executable, __file__, "--worker", name, "--resolutions", res, "--out", str(out)]
    for option in ("blocks", "device", "dtype", "max_seconds", "seed"):
        cmd += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    subprocess.run(cmd, check=True)
    return torch.load(out, weights_only=True)


def mad(a: torch.Tensor, b: torch.Tensor) -> tuple[float, int]:
    """Mean |a - b| in uint8 steps over the frames both have, and how many frames that is."""
    n = min(a.shape[1], b.shape[1])
    return (a[:, :n].float() - b[:, :n].float()).abs().mean().item(), n


# ------------------------------------------------------------------------------------------ main
def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolutions", nargs="+", default=["320x192", "832x480"], help="WIDTHxHEIGHT ...")
    ap.add_argument("--blocks", type=int, default=2, help="blocks of 3 latent frames per decoder (default 2)")
    ap.add_argument("--decoders", nargs="+", choices=DECODERS, default=list(DECODERS))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=DTYPES, default="float32")
    ap.add_argument(
        "--max-seconds", type=float, default=120.0, help="per decoder and resolution (>= 1 block)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worker", choices=DECODERS, help=argparse.SUPPRESS)  # internal: one run, to --out
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    if args.worker:
        torch.save(run(args.worker, args.resolutions[0], args), args.out)
        return
    device = torch.device(args.device)
    names = ["wan", *[d for d in args.decoders if d != "wan"]] if "wan" in args.decoders else args.decoders
    where = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    )
    print(
        f"decoders on {device.type} ({where}), {args.dtype}, up to {args.blocks} blocks of "
        f"{FRAMES_PER_BLOCK} latent frames, each decoder in its own process; torch {torch.__version__}, "
        f"diffusers {diffusers.__version__}"
    )
    print(
        "RANDOM weights at the real architecture sizes, RANDOM latents: the 'MAD vs wan' column (mean |frame "
        "difference| in\nuint8 steps) says NOTHING about quality; time and memory are the meaningful columns."
    )
    header = (
        f"{'resolution':<10} {'decoder':<9} {'weights MiB':>11} {'blocks':>6} {'1st block s':>11} "
        f"{'block med s':>11} {'frames/s':>8} {'peak MiB':>9} {'MAD vs wan':>10} {'frames':>6}"
    )
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for res in args.resolutions:
            print("\n" + header, flush=True)
            reference = None
            for name in names:
                r = run_in_subprocess(name, res, args, Path(tmp) / f"{name}.pt")
                if name == "wan":
                    reference = r["frames"]
                times = r["block_s"]
                med = statistics.median(times[1:]) if len(times) > 1 else None
                fps = f"{4 * FRAMES_PER_BLOCK / med:8.1f}" if med else f"{'-':>8}"
                diff, n = mad(r["frames"], reference) if reference is not None else (float("nan"), 0)
                print(
                    f"{res:<10} {name:<9} {r['weights_mib']:>11.1f} {len(times):>6} {times[0]:>11.2f} "
                    f"{(f'{med:.2f}' if med else '-'):>11} {fps} {r['peak_mib']:>9.1f} {diff:>10.2f} {n:>6}",
                    flush=True,
                )
    print(f"\ntotal wall time {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
