"""How a generation runs (not what it computes): the fast-path switches and the stage timer.

Every switch in :class:`RuntimeOptions` leaves the video the same, up to floating-point rounding:
tests compare each one against the plain path on the CPU. :meth:`RuntimeOptions.for_device` turns
them all on for CUDA and off elsewhere; the CLI's flags override single switches.

:class:`StageTimes` is the library's timing hook: the sampler and the pipeline report their stages
(transformer passes, re-cache, VAE decode, MP4 encode) to it, so a benchmark reads the breakdown
instead of patching library functions. The default, ``None``, costs nothing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace

import torch

from .errors import InputError

log = logging.getLogger(__name__)

#: Attention kernels offered, by our name -> diffusers' ``AttentionBackendName`` value (used with
#: ``dispatch_attention_fn``). ``sdpa`` is PyTorch's scaled_dot_product_attention, which picks the
#: FlashAttention-2, memory-efficient or cuDNN kernel on CUDA by itself; ``sdpa-*`` force one of
#: them; ``flash-attn`` needs the ``flash-attn`` package (FlashAttention-2), ``flash-attn-3`` its
#: Hopper build (FlashAttention-3, module ``flash_attn_interface``; the kernel the official LongLive v1.0
#: code uses on H100/H200). The flash kernels take no mask: passes that need one (a static cache still
#: filling, the naive reference) use diffusers' default instead.
ATTENTION_BACKENDS = {
    "sdpa": "native",
    "sdpa-flash": "_native_flash",
    "sdpa-efficient": "_native_efficient",
    "sdpa-cudnn": "_native_cudnn",
    "sdpa-math": "_native_math",
    "flash-attn": "flash",
    "flash-attn-3": "_flash_3",
}
#: The Python module each backend needs, and how to get it (checked when the options are made).
ATTENTION_PACKAGES = {
    "flash-attn": (
        "flash_attn",
        "--attention flash-attn needs the flash-attn package (pip install flash-attn, which builds against "
        "your torch and CUDA); or use --attention sdpa-flash, PyTorch's own FlashAttention",
    ),
    "flash-attn-3": (
        "flash_attn_interface",
        "--attention flash-attn-3 needs FlashAttention-3 (module flash_attn_interface, built from the "
        "hopper/ folder of Dao-AILab/flash-attention, for H100/H200); or use --attention sdpa-cudnn",
    ),
}
#: Forced backends that are not given a mask: FlashAttention takes none, and cuDNN's and the memory-efficient
#: kernel's mask support depends on the build and shape; the passes that need a mask (a static cache still
#: filling, the naive reference) use PyTorch's default choice instead, which handles any mask.
MASKLESS_BACKENDS = frozenset({"_native_flash", "flash", "_flash_3", "_native_cudnn", "_native_efficient"})


@dataclass(frozen=True)
class RuntimeOptions:
    """Fast-path switches of the causal transformer and the pipeline.

    Attributes:
        fused_qkv: one ``[3*dim, dim]`` matmul for self-attention Q/K/V instead of three
            (diffusers' ``WanAttention.fuse_projections``; the separate weights are then dropped,
            so memory does not grow). Ignored for INT8 models (torchao tensors cannot be concatenated).
        rope_cache: RoPE cos/sin tables built once per resolution (height/width part) and once per
            block (time part), instead of on every pass; bit-identical.
        static_cache: the KV cache is always read whole (``capacity_frames`` latent frames) with a
            key mask while it is filling, and written through a device index tensor; every
            denoising pass then has the same shapes, which ``torch.compile`` / CUDA graphs need.
        compile: ``torch.compile`` the 30 transformer blocks for passes over one block of latent
            frames (re-cache passes, rare and of other sizes, run eagerly). Falls back to eager,
            with a warning, if compilation fails.
        compile_mode: ``torch.compile`` mode (``None``: default; ``"reduce-overhead"``: CUDA graphs;
            ``"max-autotune-no-cudagraphs"``).
        compile_backend: ``torch.compile`` backend (``"inductor"``; tests use ``"aot_eager"``).
        attention: a key of :data:`ATTENTION_BACKENDS`, or ``None`` for diffusers' default
            (PyTorch SDPA).
        overlap_decode: decode each finished block with the VAE and pipe it to ffmpeg on a worker
            thread (its own CUDA stream on CUDA) while the next block is generated.
        compile_decoder: ``torch.compile`` the Wan VAE decoder's one-latent-frame call (with
            ``compile_backend``; one graph per resolution, used from a video's third latent frame on, when the
            causal feature cache has its steady shape; the first two run eagerly). Falls back to eager, with a
            warning, if compilation fails. Off by default everywhere until it is measured on a GPU
            (``benchmarks/vae_speed.py``).
        strict: a speed option that fails when used (compile error, attention backend unavailable) is an
            error instead of being switched off with a warning (``--strict-speed``, for benchmarks and CI).
    """

    fused_qkv: bool = False
    rope_cache: bool = False
    static_cache: bool = False
    compile: bool = False
    compile_mode: str | None = None
    compile_backend: str | Callable = "inductor"
    attention: str | None = None
    overlap_decode: bool = False
    compile_decoder: bool = False
    strict: bool = False

    def __post_init__(self) -> None:
        if self.attention is not None and self.attention not in ATTENTION_BACKENDS:
            raise InputError(
                f"unknown attention {self.attention!r}; choose one of {', '.join(ATTENTION_BACKENDS)}"
            )
        if self.attention in ATTENTION_PACKAGES:
            import importlib.util

            module, why = ATTENTION_PACKAGES[self.attention]
            if importlib.util.find_spec(module) is None:
                raise InputError(why)

    @classmethod
    def for_device(cls, device: torch.device | str, **overrides) -> RuntimeOptions:
        """Every switch on for CUDA, off elsewhere; ``overrides`` whose value is not None win.

        Raises:
            InputError: an unknown option name or attention backend, or ``compile`` without the static
                cache (a ValueError, exit 2).
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InputError(f"unknown runtime option(s): {', '.join(unknown)}")
        cuda = torch.device(device).type == "cuda"
        opts = cls(fused_qkv=cuda, rope_cache=cuda, static_cache=cuda, compile=cuda, overlap_decode=cuda)
        opts = replace(opts, **{k: v for k, v in overrides.items() if v is not None})
        if opts.compile and not opts.static_cache:
            if overrides.get("static_cache") is False:
                raise InputError("--compile needs the static KV cache (drop --no-static-cache)")
            # A growing cache changes the key length each block and would recompile each time.
            opts = replace(opts, static_cache=True)
        return opts

    @property
    def attention_backend(self) -> str | None:
        """diffusers' backend name for :attr:`attention` (None: diffusers' default)."""
        return None if self.attention is None else ATTENTION_BACKENDS[self.attention]

    def describe(self) -> str:
        """One line naming the switches that are on, e.g. ``fused-qkv, rope-cache, compile``."""
        names = [
            f.name.replace("_", "-")
            for f in fields(self)
            if getattr(self, f.name) is True and f.name != "strict"
        ]
        if self.compile and self.compile_mode:
            names[names.index("compile")] = f"compile ({self.compile_mode})"
        if self.attention:
            names.append(f"attention {self.attention}")
        return ", ".join(names) or "plain"


def fall_back(option: str, err: Exception, *, strict: bool, record: list[str], instead: str) -> None:
    """The rule for a speed option that fails when used: one warning naming ``option`` and the error, and a
    line in ``record`` (the model's list of fallbacks, which ``longlive bench`` reports); the caller then goes
    on without it (``instead`` says how). With ``strict`` (``--strict-speed``) it is an error instead.

    Raises:
        GenerationError: ``strict`` is set.
    """
    from .errors import GenerationError

    reason = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
    if strict:
        raise GenerationError(
            f"{option} failed and --strict-speed forbids switching it off: {reason}"
        ) from err
    log.warning("%s failed (%s); %s, generation goes on", option, reason, instead)
    record.append(f"{option}: {reason}")


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when PyTorch sees a GPU, else ``cpu``; ``cpu`` and ``cuda`` as given.

    Raises:
        InputError: ``cuda`` without a CUDA GPU; ``auto`` or ``cuda`` when a GPU is present that this torch
            cannot use (driver too old for its CUDA build: :func:`~longlive_cli.system.cuda_unusable_reason`);
            an unknown name.
    """
    from .system import cuda_unusable_reason

    if device in ("auto", "cuda") and not torch.cuda.is_available():
        reason = cuda_unusable_reason()
        if reason is not None:  # a GPU that torch cannot use: never fall to the CPU without a word
            raise InputError(f"{reason} To run on the CPU anyway, pass --device cpu.")
        if device == "cuda":
            raise InputError("--device cuda was asked for, but PyTorch sees no CUDA GPU. Use --device cpu.")
        return "cpu"
    if device == "auto":
        return "cuda"
    if device not in ("cpu", "cuda"):
        raise InputError(f"unknown device {device!r}; use auto, cpu or cuda")
    return device


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "float32": torch.float32}
#: The name of each dtype of :data:`DTYPES` (:mod:`longlive_cli.precision`'s names).
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


def resolve_dtype(dtype: str | torch.dtype, device: str) -> torch.dtype:
    """``auto`` -> bfloat16 on CUDA, float32 on the CPU; ``bf16``, ``fp16``, ``float32`` or a torch dtype as
    given.

    Raises:
        InputError: an unknown name.
    """
    from .precision import transformer_dtype

    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[transformer_dtype(device, dtype)]  # the rule is precision.py's
    except (ValueError, TypeError):
        raise InputError(f"unknown dtype {dtype!r}; use auto, {', '.join(DTYPES)}") from None


class StageTimes:
    """Wall seconds and call counts per named stage, from any thread.

    Args:
        cuda_sync: synchronize the CUDA device at both ends of every stage, so queued GPU work is
            charged to the stage that queued it. This serializes the GPU (it removes the
            decode/generation overlap), so use it for a breakdown, not for a throughput number.

    Stages in use: ``prompt`` (text projection and cross-attention K/V), ``denoise``, ``recache``,
    ``clean`` (transformer passes), ``decode`` (VAE), ``encode`` (frames piped to ffmpeg and the
    final flush), ``wait`` (with overlap: the generating thread waits for the decode worker). A
    stage entered inside another stage on the same thread is charged to the outer.
    """

    def __init__(self, *, cuda_sync: bool = False) -> None:
        self.cuda_sync = cuda_sync and torch.cuda.is_available()
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.threads: dict[str, set[str]] = defaultdict(set)
        self._lock = threading.Lock()
        self._local = threading.local()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` body as stage ``name``."""
        if getattr(self._local, "active", False):
            yield
            return
        self._local.active = True
        if self.cuda_sync:
            torch.cuda.synchronize()
        start = time.perf_counter()
        try:
            yield
            if self.cuda_sync:
                torch.cuda.synchronize()
        finally:
            elapsed = time.perf_counter() - start
            self._local.active = False
            with self._lock:
                self.seconds[name] += elapsed
                self.calls[name] += 1
                self.threads[name].add(threading.current_thread().name)


def stage(times: StageTimes | None, name: str) -> contextlib.AbstractContextManager:
    """``times.stage(name)``, or a no-op when ``times`` is None."""
    return contextlib.nullcontext() if times is None else times.stage(name)
