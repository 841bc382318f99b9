"""The memory check: the peak host RAM and GPU memory of a run, estimated from the model's parts and the plan
before anything large is loaded, and a clear refusal (with the ways out) when it cannot fit. Torch-free.

A run goes through phases one after another, and only the largest counts:

1. **text encoding** (skipped when every prompt is in the embedding cache): the UMT5 encoder's weights in
   the text dtype and one forward pass over ``text_len`` tokens;
2. **first-run conversion** (only while the converted-weights cache has no file for this generator and
   dtype): the LoRA targets merged in float32 and, for another dtype, the converted copy; the source files
   are memory-mapped and read once, so their pages are not counted;
3. **INT8 quantization** (with ``--quantize``): the transformer in its dtype and its INT8 copy;
4. **generation**: the transformer weights, the self-attention KV cache (``2 x layers x local_attn_size
   frames x tokens per frame x dim``), the prompt's cross-attention K/V (the old prompt's are dropped before
   a switch computes the new ones), the VAE, and the working memory of the largest transformer pass (a
   re-cache pass covers up to ``local_attn_size`` latent frames) and of decoding one block; plus the text
   encoder when it is kept loaded (``longlive live``).

Working-memory coefficients were measured on the CPU (float32, Wan2.1-1.3B architecture, PyTorch 2.13):
about ``bytes x (4 ffn_dim + 8 dim)`` per token of a transformer pass (CPU SDPA is a flash kernel: no
``tokens^2`` scores), and about 20 KB per output pixel (float32, Wan2.1 VAE, feature cache included) for
decoding one block. They are estimates, rounded up; the check leaves a margin and can be skipped
(``--no-memory-check`` or ``LONGLIVE_NO_MEMORY_CHECK=1``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from .architectures import ARCHITECTURES, architecture_of
from .errors import InputError
from .models.spec import (
    KNOWN_DTYPES,
    KNOWN_SIZES,
    ModelSpec,
    components,
    parse_source,
)
from .precision import BYTES_PER_ELEMENT, PartDtypes, safetensors_header, stored_dtype

__all__ = [
    "MemoryEstimate",
    "MemoryInputs",
    "Phase",
    "TextEncoderArch",
    "TransformerArch",
    "check_fits",
    "estimate_memory",
    "host_available_bytes",
    "human_bytes",
    "inputs_for_model",
    "memory_check_disabled",
    "parse_size",
    "transformer_config",
]

#: Environment variable that turns the check off (any non-empty value but 0).
NO_CHECK_ENV = "LONGLIVE_NO_MEMORY_CHECK"
#: diffusers' ``WanTransformer3DModel._keep_in_fp32_modules`` (a test keeps them equal).
KEEP_IN_FP32 = ("rope", "time_embedder", "scale_shift_table", "norm1", "norm2", "norm3")
_MB = 1_000_000
_PASS_FIXED = 64 * _MB  # transformer pass: timestep embeddings, RoPE tables, small buffers
_DECODE_FIXED = 300 * _MB  # VAE decode: per-call buffers at any size (measured 128x80 -> 418 MB)
_DECODE_PER_PIXEL = 20_000  # float32, base_dim 96 (measured 512x320: 3.57 GB for the first block)
_WAN_VAE_BASE_DIM = 96


def human_bytes(size: float) -> str:
    """``1234567`` -> ``1.2 MB`` (powers of 1000)."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} GB"  # pragma: no cover


def parse_size(text: str) -> int:
    """``"11.4 GB"`` -> ``11_400_000_000`` (B, KB, MB, GB; powers of 1000).

    Raises:
        ValueError: not a number and one of those units.
    """
    number, _, unit = text.strip().partition(" ")
    scale = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
    if unit not in scale:
        raise ValueError(f"not a size: {text!r}")
    return int(float(number) * scale[unit])


@dataclass(frozen=True)
class TransformerArch:
    """The numbers of a ``WanTransformer3DModel`` config that fix its memory (text-to-video layout).

    ``dim`` = heads x head_dim; ``patch_size`` is ``(t, h, w)``.
    """

    num_layers: int
    dim: int
    ffn_dim: int
    text_dim: int
    freq_dim: int
    in_channels: int
    out_channels: int
    patch_size: tuple[int, int, int]

    @classmethod
    def from_config(cls, config: Mapping) -> TransformerArch:
        """From a ``transformer/config.json`` mapping (or ``WanTransformer3DModel`` kwargs).

        Raises:
            KeyError: a field is missing.
        """
        return cls(
            num_layers=int(config["num_layers"]),
            dim=int(config["num_attention_heads"]) * int(config["attention_head_dim"]),
            ffn_dim=int(config["ffn_dim"]),
            text_dim=int(config["text_dim"]),
            freq_dim=int(config["freq_dim"]),
            in_channels=int(config["in_channels"]),
            out_channels=int(config["out_channels"]),
            patch_size=tuple(int(p) for p in config["patch_size"]),  # type: ignore[arg-type]
        )

    @property
    def block_linear_params(self) -> int:
        """Weights of the Linear layers inside the blocks (attention q/k/v/o twice, FFN in/out): the LoRA
        targets of LongLive, and what INT8 quantizes."""
        d, f = self.dim, self.ffn_dim
        return self.num_layers * (8 * d * d + 2 * d * f)

    @property
    def float32_params(self) -> int:
        """Parameters kept in float32 whatever the dtype: the time embedder, every ``scale_shift_table`` and
        the affine cross-attention norms (``norm2``)."""
        d = self.dim
        time_embedder = self.freq_dim * d + d + d * d + d
        return time_embedder + self.num_layers * (6 * d + 2 * d) + 2 * d

    @property
    def params(self) -> int:
        """All parameters (1,418,996,800 for Wan2.1-T2V-1.3B)."""
        d, f, n = self.dim, self.ffn_dim, self.num_layers
        pt, ph, pw = self.patch_size
        patch = d * self.in_channels * pt * ph * pw + d
        time = self.freq_dim * d + d + d * d + d + 6 * d * d + 6 * d  # time_embedder + time_proj
        text = self.text_dim * d + d + d * d + d
        attention = 4 * (d * d + d) + 2 * d  # q, k, v, out + q/k norms
        block = 2 * attention + 2 * d + (d * f + f + f * d + d) + 6 * d  # + norm2, FFN, scale_shift_table
        out = (d + 1) * self.out_channels * pt * ph * pw + 2 * d  # proj_out, scale_shift_table
        return patch + time + text + n * block + out

    def weight_bytes(self, dtype: str, *, int8: bool = False) -> int:
        """Bytes of the weights in ``dtype`` (the float32 modules at 4 bytes); with ``int8`` the block
        Linear weights at 1 byte (their per-row scales are ignored)."""
        bpe = BYTES_PER_ELEMENT[dtype]
        rest = self.params - self.float32_params
        if int8:
            return (
                self.block_linear_params + (rest - self.block_linear_params) * bpe + self.float32_params * 4
            )
        return rest * bpe + self.float32_params * 4


@dataclass(frozen=True)
class TextEncoderArch:
    """The UMT5 encoder's size: ``params`` (from the file size and stored dtype), width, FFN and heads."""

    params: int
    d_model: int = 4096
    d_ff: int = 10240
    num_heads: int = 64


@dataclass(frozen=True)
class MemoryInputs:
    """Everything :func:`estimate_memory` needs; the ways out are variations of it.

    Attributes:
        model: the model's name, for messages.
        device: ``cpu`` or ``cuda`` (where the transformer and the VAE run).
        dtypes: the compute dtype of each part.
        transformer: the transformer's numbers.
        width, height: the largest video size planned, in pixels.
        local_attn_size: KV cache length in latent frames (12).
        text_len: text positions (512).
        text_encoder: the encoder's size, or None when it is never loaded (every prompt cached).
        text_device: where the encoder runs (``cpu`` or ``cuda``).
        keep_text_encoder: the encoder stays loaded beside the video model (``longlive live``).
        vae_params, vae_base_dim: the VAE's parameter count and first-stage width (96 for Wan2.1).
        convert_lora: None when no first-run conversion is due; else whether a LoRA is merged in it.
        int8: quantize the transformer in memory after loading (``--quantize int8``).
        quantized_bytes: the transformer is an INT8 file of this size (``longlive quantize``), or None.
        cuda_available: a CUDA GPU is there (``--device cuda`` is a way out).
        video_loaded: the video model is loaded already (its memory is no longer available): only the
            text encoding is estimated.
        spatial_stride: pixels per latent pixel (8 for the Wan2.1 VAE, 16 for Wan2.2's: LongLive 2.0).
    """

    model: str
    device: str
    dtypes: PartDtypes
    transformer: TransformerArch
    width: int
    height: int
    local_attn_size: int = 12
    text_len: int = 512
    text_encoder: TextEncoderArch | None = None
    text_device: str = "cpu"
    keep_text_encoder: bool = False
    vae_params: int = 0
    vae_base_dim: int = _WAN_VAE_BASE_DIM
    convert_lora: bool | None = None
    int8: bool = False
    quantized_bytes: int | None = None
    cuda_available: bool = False
    video_loaded: bool = False
    spatial_stride: int = 8

    @property
    def tokens_per_frame(self) -> int:
        _, ph, pw = self.transformer.patch_size
        s = self.spatial_stride  # pixels per latent pixel: 8 (Wan2.1 VAE), 16 (Wan2.2 VAE, LongLive 2.0)
        return (self.height // s // ph) * (self.width // s // pw)


@dataclass(frozen=True)
class Phase:
    """One phase of a run: ``(what, bytes)`` items on the host and on the GPU."""

    name: str
    host: tuple[tuple[str, int], ...] = ()
    gpu: tuple[tuple[str, int], ...] = ()

    def total(self, where: str) -> int:
        """Bytes on ``host`` or ``gpu``."""
        return sum(b for _, b in (self.host if where == "host" else self.gpu))


@dataclass(frozen=True)
class MemoryEstimate:
    """The phases of a run and their peaks; ``inputs`` made it."""

    inputs: MemoryInputs
    phases: tuple[Phase, ...] = field(default_factory=tuple)

    def peak(self, where: str) -> tuple[int, Phase | None]:
        """The largest phase total on ``host`` or ``gpu`` and that phase (None if nothing is there)."""
        best: tuple[int, Phase | None] = (0, None)
        for phase in self.phases:
            if phase.total(where) > best[0]:
                best = (phase.total(where), phase)
        return best

    @property
    def host_peak(self) -> int:
        """Peak host RAM in bytes, on top of the process as it is before loading."""
        return self.peak("host")[0]

    @property
    def gpu_peak(self) -> int:
        """Peak GPU memory in bytes (0 on the CPU)."""
        return self.peak("gpu")[0]

    def describe(self) -> list[str]:
        """One line per phase and memory, e.g. ``generation (RAM): 7.4 GB = transformer 5.7 GB + ...``."""
        lines = []
        for phase in self.phases:
            for where, label in (("host", "RAM"), ("gpu", "GPU")):
                items = phase.host if where == "host" else phase.gpu
                if items:
                    parts = ", ".join(f"{what} {human_bytes(b)}" for what, b in items)
                    lines.append(f"{phase.name} ({label}): {human_bytes(phase.total(where))} = {parts}")
        return lines


def _transformer_items(i: MemoryInputs) -> list[tuple[str, int]]:
    arch, dtype = i.transformer, i.dtypes.transformer
    bpe = BYTES_PER_ELEMENT[dtype]
    tokens = i.tokens_per_frame
    if i.quantized_bytes is not None:
        weights = ("transformer weights (INT8 file)", i.quantized_bytes)
    else:
        weights = (
            f"transformer weights ({'INT8' if i.int8 else dtype})",
            arch.weight_bytes(dtype, int8=i.int8),
        )
    kv = 2 * arch.num_layers * i.local_attn_size * tokens * arch.dim * bpe
    cross = (2 * arch.num_layers + 1) * i.text_len * arch.dim * bpe  # one prompt's K/V + its context
    pass_tokens = i.local_attn_size * tokens  # a re-cache pass covers up to the whole window
    work = _PASS_FIXED + pass_tokens * (bpe * (4 * arch.ffn_dim + 8 * arch.dim) + 12 * arch.dim)
    return [
        weights,
        (f"KV cache ({i.local_attn_size} latent frames x {tokens} tokens)", kv),
        ("cross-attention K/V", cross),
        (f"transformer pass ({pass_tokens} tokens)", work),
    ]


def _vae_items(i: MemoryInputs) -> list[tuple[str, int]]:
    bpe = BYTES_PER_ELEMENT[i.dtypes.vae]
    scale = i.vae_base_dim / _WAN_VAE_BASE_DIM
    decode = int((_DECODE_FIXED + _DECODE_PER_PIXEL * i.width * i.height) * scale * bpe / 4)
    return [
        (f"VAE weights ({i.dtypes.vae})", i.vae_params * bpe),
        (f"VAE decode ({i.width}x{i.height})", decode),
    ]


def _text_items(i: MemoryInputs) -> list[tuple[str, int]]:
    t = i.text_encoder
    assert t is not None
    bpe = BYTES_PER_ELEMENT[i.dtypes.text_encoder]
    n = i.text_len
    work = 3 * t.num_heads * n * n * 4 + n * (3 * t.d_ff + 6 * t.d_model) * 4
    return [(f"text encoder weights ({i.dtypes.text_encoder})", t.params * bpe), ("text encoder pass", work)]


def estimate_memory(inputs: MemoryInputs) -> MemoryEstimate:
    """The phases of the run ``inputs`` describes (module docstring) with their bytes per item.

    Host bytes are on top of the process before loading (libraries imported); GPU bytes leave out the CUDA
    context. Nothing is loaded or measured.
    """
    i = inputs
    gpu = i.device == "cuda"
    phases = []
    if i.text_encoder is not None and (not i.keep_text_encoder or i.video_loaded):
        items = tuple(_text_items(i))
        phases.append(
            Phase("text encoding", gpu=items)
            if i.text_device == "cuda"
            else Phase("text encoding", host=items)
        )
    if i.video_loaded:
        return MemoryEstimate(inputs=i, phases=tuple(phases))
    arch = i.transformer
    if i.convert_lora is not None and i.quantized_bytes is None:
        host = []
        if i.convert_lora:
            host.append(("LoRA merged into the block weights (float32)", arch.block_linear_params * 4))
        if i.dtypes.transformer != "float32" or not i.convert_lora:
            host.append(
                (f"converted weights ({i.dtypes.transformer})", arch.weight_bytes(i.dtypes.transformer))
            )
        phases.append(Phase("first-run conversion", host=tuple(host)))
    if i.int8 and i.quantized_bytes is None:
        items = (
            (f"transformer weights ({i.dtypes.transformer})", arch.weight_bytes(i.dtypes.transformer)),
            ("INT8 copy", arch.block_linear_params),
        )
        phases.append(
            Phase("INT8 quantization", gpu=items) if gpu else Phase("INT8 quantization", host=items)
        )
    video = _transformer_items(i) + _vae_items(i)
    text_kept = _text_items(i)[:1] if i.text_encoder is not None and i.keep_text_encoder else []
    if gpu:
        on_gpu = video + (text_kept if i.text_device == "cuda" else [])
        on_host = text_kept if i.text_device != "cuda" else []
        phases.append(Phase("generation", host=tuple(on_host), gpu=tuple(on_gpu)))
    else:
        phases.append(Phase("generation", host=tuple(video + text_kept)))
    return MemoryEstimate(inputs=i, phases=tuple(phases))


def _file_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.suffix != ".json")


def _params(path: Path) -> int:
    """Parameters in a weight file or folder: its size over the bytes per element of its stored dtype."""
    return _file_bytes(path) // BYTES_PER_ELEMENT[stored_dtype(path) or "float32"]


def _json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


#: The transformer configs known without a file, by base repo: each architecture's base
#: (:attr:`longlive_cli.architectures.Architecture.transformer_config`; Wan2.1-T2V-1.3B, Wan2.2-TI2V-5B).
KNOWN_TRANSFORMER_CONFIGS = {
    a.base_repo: a.known_transformer_config for a in ARCHITECTURES.values() if a.transformer_config
}


def transformer_config(spec: ModelSpec, paths: Mapping[str, Path]) -> dict:
    """The transformer's config (``WanTransformer3DModel`` kwargs) of ``spec`` with parts at ``paths``, from
    its JSON file or the INT8 file's metadata; when neither is local yet, the known config of the spec's base
    (:data:`KNOWN_TRANSFORMER_CONFIGS`), so that a preset is estimated before anything is downloaded.

    Raises:
        OSError, ValueError: unreadable. KeyError: no file and no known config.
    """
    if "quantized" in paths:
        import json

        return json.loads(safetensors_header(paths["quantized"])["__metadata__"]["transformer_config"])
    if spec.base is None:  # the architecture's tiny random transformer
        return architecture_of(spec.architecture).known_transformer_config(tiny=True)
    if "transformer_config" in paths:
        return _json(paths["transformer_config"])
    if "transformer" in paths:
        return _json(paths["transformer"] / "config.json")
    known = KNOWN_TRANSFORMER_CONFIGS.get(str(parse_source(spec.base, relative_to=spec.spec_dir)))
    if known is None:
        raise KeyError(f"the transformer config of {spec.base} (not downloaded yet)")
    return known()


def _known_params(spec: ModelSpec, role: str) -> int:
    """Parameters of ``spec``'s part ``role`` from its source's known size and stored dtype
    (:data:`~longlive_cli.models.spec.KNOWN_SIZES`, ``KNOWN_DTYPES``), for a file not downloaded yet.

    Raises:
        KeyError: the size of that file is not known.
    """
    source = next(str(p.source) for p in components(spec) if p.role == role)
    if source not in KNOWN_SIZES:
        raise KeyError(f"the size of {source} (not downloaded yet)")
    return parse_size(KNOWN_SIZES[source]) // BYTES_PER_ELEMENT[KNOWN_DTYPES.get(source, "float32")]


def _text_encoder_arch(spec: ModelSpec, paths: Mapping[str, Path]) -> TextEncoderArch:
    if spec.base is None:  # the tiny UMT5 (2 layers, d_model 32)
        return TextEncoderArch(params=28_960, d_model=32, d_ff=64, num_heads=2)
    if "text_encoder" not in paths:  # not downloaded yet: UMT5-XXL of the known size
        return TextEncoderArch(_known_params(spec, "text_encoder"))
    encoder = paths["text_encoder"]
    config = encoder / "config.json" if encoder.is_dir() else None
    if config is not None and config.is_file():
        c = _json(config)
        return TextEncoderArch(_params(encoder), int(c["d_model"]), int(c["d_ff"]), int(c["num_heads"]))
    return TextEncoderArch(_params(encoder))  # Wan's .pth: UMT5-XXL


def _decoder_size(spec: ModelSpec, paths: Mapping[str, Path]) -> tuple[int, int]:
    """``(parameters, first-stage width)`` of the decoder: the Wan VAE's, or a fast decoder's (its working
    memory is estimated as the Wan VAE's: an upper bound)."""
    if spec.base is None:  # the architecture's tiny random VAE (Wan2.1's or Wan2.2's layout)
        return architecture_of(spec.architecture).tiny_vae_size
    if "decoder" in paths:
        return _params(paths["decoder"]), _WAN_VAE_BASE_DIM
    if spec.decoder != "wan":  # a fast decoder not downloaded yet: its weights are small
        return 0, _WAN_VAE_BASE_DIM
    if "vae" not in paths:  # not downloaded yet
        return _known_params(spec, "vae"), _WAN_VAE_BASE_DIM
    vae = paths["vae"]
    folder = vae if (vae / "config.json").is_file() else vae / "vae"
    base_dim = int(_json(folder / "config.json").get("base_dim", 96)) if vae.is_dir() else 96
    return _params(folder if vae.is_dir() else vae), base_dim


def inputs_for_model(
    spec: ModelSpec,
    paths: Mapping[str, Path],
    *,
    device: str,
    dtypes: PartDtypes,
    width: int,
    height: int,
    encode_text: bool,
    text_device: str | None = None,
    keep_text_encoder: bool = False,
    convert: bool = False,
    int8: bool = False,
    cuda_available: bool = False,
    video_loaded: bool = False,
) -> MemoryInputs:
    """:class:`MemoryInputs` for ``spec`` whose parts are at ``paths`` (the roles of
    :func:`~longlive_cli.models.spec.components`; those not local yet are left out), read from the files'
    configs, headers and sizes (nothing is loaded). A part not downloaded yet counts with its known config
    and size (a preset's), so a run that cannot fit is refused before anything is fetched. ``convert``: a
    first-run conversion of the generator is due (no converted-weights cache file for this run yet);
    ``encode_text``: some prompt is not in the embedding cache (or the encoder is kept loaded).

    Raises:
        OSError, ValueError, KeyError: a config or header cannot be read; a part not local has no known size.
    """
    arch = TransformerArch.from_config(transformer_config(spec, paths))
    text = _text_encoder_arch(spec, paths) if encode_text or keep_text_encoder else None
    vae_params, base_dim = _decoder_size(spec, paths)
    return MemoryInputs(
        model=spec.name,
        device=device,
        dtypes=dtypes,
        transformer=arch,
        width=width,
        height=height,
        local_attn_size=spec.sampler.local_attn_size,
        text_len=spec.geometry.text_len,
        text_encoder=text,
        text_device=text_device or device,
        keep_text_encoder=keep_text_encoder,
        vae_params=vae_params,
        vae_base_dim=base_dim,
        convert_lora=bool(spec.lora) if convert else None,
        int8=int8,
        quantized_bytes=paths["quantized"].stat().st_size if "quantized" in paths else None,
        cuda_available=cuda_available,
        video_loaded=video_loaded,
        spatial_stride=spec.geometry.vae_spatial_stride,
    )


def memory_check_disabled() -> bool:
    """True when ``LONGLIVE_NO_MEMORY_CHECK`` is set to anything but ``""`` or ``0``."""
    return os.environ.get(NO_CHECK_ENV, "").strip() not in ("", "0")


def host_available_bytes() -> int | None:
    """Memory this process can still take without swapping: ``MemAvailable`` of ``/proc/meminfo``, lowered to
    what the cgroup (v2 or v1) limit leaves; ``os.sysconf`` free pages elsewhere; None when unknown."""
    available: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, AttributeError):
            return None
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit != "max" and int(limit) < 1 << 60:
                available = min(available, int(limit) - int(Path(usage_file).read_text().strip()))
            break
        except (OSError, ValueError):
            continue
    return available


def _margin(need: int) -> int:
    return need // 20 + 256 * _MB


def fits(estimate: MemoryEstimate, host_available: int | None, gpu_available: int | None) -> bool:
    """Whether both peaks, plus a margin (5 % + 256 MB), fit in what is available (None: not checked)."""
    for need, have in ((estimate.host_peak, host_available), (estimate.gpu_peak, gpu_available)):
        if have is not None and need > 0 and need + _margin(need) > have:
            return False
    return True


def _ways_out(inputs: MemoryInputs) -> list[tuple[str, MemoryInputs]]:
    i, d = inputs, inputs.dtypes
    out: list[tuple[str, MemoryInputs]] = []
    if i.text_encoder is not None and d.text_encoder == "float32":
        out.append(("--text-dtype bf16", replace(i, dtypes=replace(d, text_encoder="bf16"))))
    if d.transformer == "float32":
        vae = d.vae if i.device == "cpu" else "bf16"
        out.append(("--dtype bf16", replace(i, dtypes=replace(d, transformer="bf16", vae=vae))))
    if not i.int8 and i.quantized_bytes is None:
        out.append(("--quantize int8", replace(i, int8=True)))
    if i.width * i.height > 256 * 160:
        w, h = max(16, i.width // 2 // 16 * 16), max(16, i.height // 2 // 16 * 16)
        out.append((f"--resolution {w}x{h}", replace(i, width=w, height=h)))
    if i.device == "cpu" and i.cuda_available:
        bf16 = replace(d, transformer="bf16", vae="bf16")
        out.append(("--device cuda", replace(i, device="cuda", dtypes=bf16, text_device="cuda")))
    return out


def check_fits(
    estimate: MemoryEstimate,
    *,
    host_available: int | None,
    gpu_available: int | None = None,
    estimator: Callable[[MemoryInputs], MemoryEstimate] = estimate_memory,
) -> None:
    """Refuse a run that cannot fit, before anything large is loaded.

    Args:
        estimate: the run's :func:`estimate_memory`.
        host_available, gpu_available: bytes free now (None: that memory is not checked).
        estimator: recomputes the estimate for each way out (for the message).

    Raises:
        InputError: a peak (plus the margin) exceeds what is available (exit 2). The message names the
            phase and its parts, what is available, and the ways out with their peaks.
    """
    if fits(estimate, host_available, gpu_available):
        return
    i = estimate.inputs
    problems = []
    for where, label, have in (("host", "RAM", host_available), ("gpu", "GPU memory", gpu_available)):
        need, phase = estimate.peak(where)
        if have is None or phase is None or need + _margin(need) <= have:
            continue
        items = phase.host if where == "host" else phase.gpu
        parts = ", ".join(f"{what} {human_bytes(b)}" for what, b in items)
        problems.append(
            f"about {human_bytes(need)} of {label} at its peak ({phase.name}: {parts}), and "
            f"{human_bytes(have)} is available"
        )
    ways = []
    for flag, changed in _ways_out(i):
        other = estimator(changed)
        ok = fits(other, host_available, gpu_available if changed.device == "cuda" else None)
        peaks = f"RAM {human_bytes(other.host_peak)}"
        if other.gpu_peak:
            peaks += f", GPU {human_bytes(other.gpu_peak)}"
        ways.append(f"{flag} ({peaks}{', fits' if ok else ''})")
    where = "the GPU" if i.device == "cuda" else "the CPU"
    message = (
        f"not enough memory for {i.model} at {i.width}x{i.height} on {where}: the run needs "
        + "; and ".join(problems)
        + ".\nWays out: "
        + "; ".join([*ways, "close other programs", "--no-memory-check to try anyway (it may be killed)"])
        + "."
    )
    raise InputError(message)
