"""The front door: load a model once, plan storyboards, make videos.

>>> from longlive_cli import LongLive
>>> ll = LongLive.from_pretrained("tiny-random", device="cpu")
>>> result = ll.generate("examples/panda_short.yaml", "panda.mp4")    # doctest: +SKIP
>>> for event in ll.stream(ll.plan("story.yaml", seed=3), "out.mp4"):  # doctest: +SKIP
...     print(event)

or in one call, as ``whisper.load_model(...).transcribe(...)``:

>>> import longlive_cli
>>> longlive_cli.generate("story.yaml", "out.mp4", model="tiny-random", device="cpu")  # doctest: +SKIP

Every entry (:meth:`LongLive.stream`, :meth:`LongLive.generate`, :func:`generate`, ``longlive generate``)
checks in one order, before anything is downloaded, encoded or loaded:

1. the arguments (types and ranges: an :class:`~longlive_cli.errors.InputError` names the argument);
2. the storyboard and its plan (:meth:`LongLive.plan`);
3. the outputs (:meth:`LongLive.check_outputs`: an existing file is refused without ``overwrite=True``);
4. the peak memory (:meth:`LongLive.check_memory`, :mod:`longlive_cli.memory`): from the model's known
   numbers for a preset (no file needed), from its configs otherwise.

Only then are the weights fetched (:meth:`LongLive.fetch`; :meth:`LongLive.from_pretrained` only resolves the
model and looks for what is local already), the prompts taken from the prompt-embedding cache or encoded by
the UMT5 encoder (:class:`~longlive_cli.text.PromptEncoder`, :attr:`LongLive.prompts`), which is then freed,
and the video model (transformer + VAE) loaded once. Each part computes in its own dtype
(:mod:`longlive_cli.precision`, :attr:`LongLive.dtypes`). For a live session, :meth:`LongLive.text_encoder`
keeps the encoder loaded and :meth:`LongLive.encode_prompt` encodes one prompt through the cache.
:func:`download` and :func:`decode` are the library side of ``longlive download`` and ``longlive decode``.
Errors are :class:`~longlive_cli.errors.LongLiveError` subclasses.
"""

from __future__ import annotations

import logging
import secrets
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .errors import InputError, ModelError, OutputError
from .events import Event, Finished, Interrupted
from .geometry import Geometry
from .hub import WeightsUnavailableError, find_local, hub_offline
from .logs import quiet_noisy_imports
from .memory import (
    MemoryEstimate,
    check_fits,
    estimate_memory,
    fits,
    host_available_bytes,
    human_bytes,
    inputs_for_model,
    memory_check_disabled,
)
from .models.spec import (
    DEFAULT_MODEL,
    PRESETS,
    LoraSpec,
    ModelSpec,
    components,
    fetch_components,
    resolve_spec,
)
from .plans import StoryboardSource, plan_storyboard
from .precision import PartDtypes, text_stored_dtype, vae_dtype
from .runtime import DTYPE_NAMES, DTYPES, RuntimeOptions, StageTimes, resolve_device, resolve_dtype
from .storyboard import Plan, Storyboard
from .text import PromptEncoder, TextPlacement, prompt_numbers

if TYPE_CHECKING:
    from .models.int8 import QuantizeSummary
    from .models.loaders import Model
    from .models.umt5 import TextEncoder
    from .pipeline import VideoOutput
    from .schedule import PromptSchedule

__all__ = [
    "DownloadedPart",
    "LongLive",
    "TextPlacement",
    "decode",
    "download",
    "generate",
    "human_bytes",
    "resolve_seed",
    "resolve_spec",
]

log = logging.getLogger(__name__)
quiet_noisy_imports()  # torchao builds without optional kernels warn when diffusers imports them

_MAX_SEED = 2**63


def resolve_seed(seed: int | None) -> int:
    """``seed``, or a fresh random one (reported in the events so the video can be made again)."""
    return secrets.randbelow(2**31) if seed is None else seed


# --------------------------------------------------------------------------- checks at the door
def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def check_seed(seed: object, *, name: str = "seed") -> int | None:
    """``seed`` if it is None or a whole number in ``[0, 2**63)`` (the storyboard's rule).

    Raises:
        InputError: anything else (a bool, a string, a float, a negative number), naming the argument.
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"{name}={_describe(seed)} is not a seed; pass a whole number from 0 to 2**63 - 1")
    if not 0 <= seed < _MAX_SEED:
        raise InputError(f"{name}={seed} is out of range; pass a whole number from 0 to 2**63 - 1")
    return seed


def _check_flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{name}={_describe(value)}: pass True or False")
    return value


def _check_path(value: object, name: str, *, optional: bool = True) -> Path | None:
    if value is None and optional:
        return None
    if isinstance(value, str) and value.strip():
        return Path(value)
    if isinstance(value, Path):
        return value
    raise InputError(f"{name}={_describe(value)}: pass a file path (a str or a pathlib.Path)")


def _check_resolution(resolution: object) -> str | tuple[int, int] | None:
    if resolution is None or isinstance(resolution, str):
        return resolution
    if (
        isinstance(resolution, tuple | list)
        and len(resolution) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in resolution)
    ):
        return (resolution[0], resolution[1])
    raise InputError(
        f"resolution={_describe(resolution)}: pass 'WIDTHxHEIGHT' (e.g. '832x480') or a (width, height) "
        "pair of whole numbers"
    )


def _check_duration(duration: object) -> str | float | None:
    if duration is None or isinstance(duration, str):
        return duration
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        return float(duration)
    raise InputError(f"duration={_describe(duration)}: pass seconds (a number) or a time such as '1:30'")


def _storyboard_source(storyboard: object) -> tuple[StoryboardSource, str | None]:
    """``(source, name)`` for :func:`~longlive_cli.plans.plan_storyboard`: YAML text on one line (a flow
    mapping such as ``{duration: 5, prompts: [...]}`` or ``key: value``) that names no file is read as text.

    Raises:
        InputError: not a path, YAML text, a mapping or a ``Storyboard`` (a number, bytes, None...).
    """
    if isinstance(storyboard, Path | Mapping | Storyboard):
        return storyboard, None
    if isinstance(storyboard, str):
        one_line = "\n" not in storyboard
        text = storyboard.strip()
        if one_line and (text.startswith("{") or ": " in text) and not Path(storyboard).exists():
            return storyboard, "<storyboard text>"
        return storyboard, None
    raise InputError(
        f"storyboard={_describe(storyboard)}: pass a file path, YAML text, a mapping or a Storyboard"
    )


def _as_loras(loras: object) -> tuple[str | LoraSpec, ...]:
    """``loras`` as a tuple: one ``SOURCE[:SCALE]`` string or :class:`LoraSpec` counts as one LoRA.

    Raises:
        InputError: not a string, a LoraSpec or a sequence of them.
    """
    if isinstance(loras, str | LoraSpec):
        return (loras,)
    if isinstance(loras, Sequence) and all(isinstance(x, str | LoraSpec) for x in loras):
        return tuple(loras)
    raise InputError(f"loras={_describe(loras)}: pass 'SOURCE[:SCALE]', a LoraSpec, or a list of them")


def _check_name(value: object, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"{name}={_describe(value)}: pass a name (a str) or None")


class LongLive:
    """A model ready to make videos: its spec, device, precision and speed options, loaded on first use.

    Build it with :meth:`from_pretrained`. Attributes: ``spec``
    (:class:`~longlive_cli.models.spec.ModelSpec`),
    ``device`` (``"cpu"`` or ``"cuda"``), ``dtype`` (the transformer's compute dtype), ``text_dtype`` and
    ``vae_dtype`` (the text encoder's and the VAE's; :attr:`dtypes` has all three), ``options``
    (:class:`~longlive_cli.runtime.RuntimeOptions`), ``int8`` (a scheme to quantize the transformer with after
    loading, or None), ``memory_check`` (refuse runs that cannot fit), ``paths`` (the local file of each part,
    by role: what was found locally, then what :meth:`fetch` downloaded), ``prompts`` (the
    :class:`~longlive_cli.text.PromptEncoder`: prompt embeddings from memory, the cache or the encoder).
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        device: str,
        dtype: torch.dtype,
        options: RuntimeOptions,
        offline: bool = False,
        int8: str | None = None,
        model: Model | None = None,
        text_dtype: torch.dtype | None = None,
        embed_cache: bool = True,
        memory_check: bool = True,
        paths: Mapping[str, Path] | None = None,
    ) -> None:
        self.spec, self.device, self.dtype, self.options = spec, device, dtype, options
        self.offline, self.int8 = offline, int8
        self.paths: dict[str, Path] = dict(paths or {})
        # the precision rule is precision.py's: the text encoder's stored dtype, the VAE's per device
        self.text_dtype = (
            text_dtype if text_dtype is not None else DTYPES[text_stored_dtype(spec) or "float32"]
        )
        self.vae_dtype = DTYPES[vae_dtype(device, DTYPE_NAMES.get(dtype, "float32"))]
        self.memory_check = memory_check and not memory_check_disabled()
        self.quantize_summary: QuantizeSummary | None = None
        self._model = model
        self._ready = False  # quantized (with int8) and configured with options
        self.prompts = PromptEncoder(
            spec,
            paths=self.paths,
            fetch=self._fetch_before_encoding,
            device=device,
            dtype=self.text_dtype,
            offline=offline,
            use_cache=embed_cache,
        )

    @classmethod
    def from_pretrained(
        cls,
        model: str | ModelSpec = DEFAULT_MODEL,
        *,
        device: str = "auto",
        dtype: str | torch.dtype = "auto",
        text_dtype: str | torch.dtype = "auto",
        options: RuntimeOptions | Mapping[str, Any] | None = None,
        offline: bool = False,
        int8: str | None = None,
        embed_cache: bool = True,
        memory_check: bool = True,
        rope: str | None = None,
        loras: str | LoraSpec | Sequence[str | LoraSpec] = (),
        decoder: str | None = None,
    ) -> LongLive:
        """Resolve ``model`` (a preset name, a spec file, or a folder with ``longlive-model.yaml``) and find
        which of its files are local already (a local file that is missing is reported now); nothing is
        downloaded or loaded here: :meth:`stream` fetches what is missing (:meth:`fetch`) after its checks.

        Args:
            model: what to load (or a :class:`~longlive_cli.models.spec.ModelSpec`).
            device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
            dtype: the transformer's: ``auto`` (bf16 on CUDA, float32 on CPU), ``bf16``, ``fp16``,
                ``float32`` or a torch dtype. The VAE computes in float32 on the CPU and in ``dtype`` on CUDA.
            text_dtype: the text encoder's: ``auto`` (the dtype its weights are stored in: bf16 for
                ``longlive-1.3b``), ``bf16``, ``fp16``, ``float32`` or a torch dtype.
            options: speed switches, or a mapping of overrides (None: keep the device's default) for
                :meth:`RuntimeOptions.for_device` (all on with CUDA, off on the CPU).
            offline: use only the local Hugging Face cache.
            int8: quantize the transformer in memory after loading with this scheme (``w8a8``, ``w8``,
                ``fp8``; :mod:`longlive_cli.models.int8`).
            embed_cache: read and write prompt embeddings in the cache (:mod:`longlive_cli.embed_cache`).
            memory_check: refuse, before loading, a run whose estimated peak memory does not fit
                (:mod:`longlive_cli.memory`; ``LONGLIVE_NO_MEMORY_CHECK=1`` also turns it off).
            rope: temporal RoPE, ``absolute`` or ``relative``, in place of the model's (None: keep it;
                :func:`~longlive_cli.models.spec.with_rope`). Relative RoPE has no length limit.
            loras: user LoRAs merged into the transformer at load time, after the model's own: one or a list
                of ``SOURCE[:SCALE]`` (a Hub reference ``owner/repo:path`` or a local file; scale 1 by
                default) or :class:`~longlive_cli.models.spec.LoraSpec`
                (:mod:`longlive_cli.models.user_loras` lists the formats read).
            decoder: ``wan``, ``lightvae``, ``taehv`` or ``lighttae`` (Wan2.1 models), ``taew2_2`` (Wan2.2:
                LongLive 2.0) in place of the model's (None: keep it; :mod:`longlive_cli.decoders`).

        Raises:
            ModelError: unknown model, bad spec file, a local weight file missing (exit 3).
            InputError: an argument of the wrong type, an unusable device, dtype, scheme or rope, ``int8`` on
                a quantized model, a LoRA written wrongly or given for a quantized model, or an unknown
                decoder (exit 2).
        """
        if not isinstance(model, str | ModelSpec):
            raise InputError(
                f"model={_describe(model)}: pass a preset name, a spec file or folder, or a ModelSpec"
            )
        for flag, name in (
            (offline, "offline"),
            (embed_cache, "embed_cache"),
            (memory_check, "memory_check"),
        ):
            _check_flag(flag, name)
        for value, name in ((device, "device"), (rope, "rope"), (decoder, "decoder"), (int8, "int8")):
            _check_name(value, name)
        if options is not None and not isinstance(options, RuntimeOptions | Mapping):
            raise InputError(f"options={_describe(options)}: pass a RuntimeOptions or a mapping of overrides")
        spec = resolve_spec(model, rope, _as_loras(loras), decoder)
        dev = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, dev)
        text = (
            None if isinstance(text_dtype, str) and text_dtype == "auto" else resolve_dtype(text_dtype, dev)
        )
        if int8 is not None:
            from .models.int8 import check_scheme

            if spec.quantized is not None:
                raise InputError(f"--int8: model {spec.name} is already quantized ({spec.scheme})")
            check_scheme(int8, dev)
        if isinstance(options, RuntimeOptions):
            opts = options
        else:
            opts = RuntimeOptions.for_device(dev, **(options or {}))
        return cls(
            spec,
            device=dev,
            dtype=torch_dtype,
            options=opts,
            offline=offline,
            int8=int8,
            text_dtype=text,
            embed_cache=embed_cache,
            memory_check=memory_check,
            paths=_local_paths(spec),
        )

    def fetch(self, *, for_text: bool = True, for_video: bool = True) -> dict[str, Path]:
        """Make the model's files local: those :meth:`from_pretrained` did not find are downloaded into the
        Hugging Face cache (unless ``offline``). ``for_text``: the text encoder and tokenizer;
        ``for_video``: transformer, LoRAs and decoder. Returns :attr:`paths`. Offline, the error names every
        file the cache lacks, not only the first.

        Raises:
            longlive_cli.hub.WeightsUnavailableError: a part cannot be had (names it and the ways out).
        """
        missing = [
            p
            for p in components(self.spec, for_text=for_text, for_video=for_video)
            if p.role not in self.paths
        ]
        if not hub_offline(self.offline):
            self.paths.update(fetch_components(self.spec, missing, offline=False))
            return self.paths
        failed: list[tuple[str, WeightsUnavailableError]] = []
        for part in missing:  # offline: name every file the cache lacks, not only the first
            try:
                self.paths.update(fetch_components(self.spec, [part], offline=True))
            except WeightsUnavailableError as err:
                failed.append((f"{part.source}" + (f" (about {part.size})" if part.size else ""), err))
        if failed:
            others = [what for what, _ in failed[1:]]
            also = f"\nAlso not in the local cache: {'; '.join(others)}." if others else ""
            raise WeightsUnavailableError(f"{failed[0][1]}{also}")
        return self.paths

    def _fetch_before_encoding(self) -> None:
        """Before the text encoder loads: every file of the run (the video model's too while it is not
        loaded), so that a missing one is reported before minutes of loading and encoding, not after."""
        self.fetch(for_video=self._model is None)

    @property
    def geometry(self) -> Geometry:
        """The model's numbers (fps, block size, strides, native resolution)."""
        return self.spec.geometry

    @property
    def dtypes(self) -> dict[str, torch.dtype]:
        """The compute dtype of each part: ``{"text_encoder": ..., "transformer": ..., "vae": ...}``
        (:mod:`longlive_cli.precision`; the transformer's float32 modules and RoPE tables aside)."""
        return {"text_encoder": self.text_dtype, "transformer": self.dtype, "vae": self.vae_dtype}

    def describe_dtypes(self) -> str:
        """One line, e.g. ``text encoder bf16, transformer float32, VAE float32``."""
        return self._part_dtypes().describe()

    def _part_dtypes(self, text_dtype: torch.dtype | None = None) -> PartDtypes:
        def name(dtype: torch.dtype) -> str:
            return DTYPE_NAMES.get(dtype) or str(dtype).removeprefix("torch.")

        return PartDtypes(
            text_encoder=name(text_dtype or self.text_dtype),
            transformer=name(self.dtype),
            vae=name(self.vae_dtype),
        )

    def plan(
        self,
        storyboard: StoryboardSource,
        *,
        seed: int | None = None,
        resolution: str | tuple[int, int] | None = None,
        duration: str | float | None = None,
    ) -> Plan:
        """The generation plan of ``storyboard`` for this model (:func:`~longlive_cli.plans.plan_storyboard`:
        a file path, YAML text (one line too, e.g. ``{duration: 5, prompts: [...]}``), a mapping or a
        ``Storyboard``; ``seed``, ``resolution`` (``"WxH"`` or ``(width, height)`` in pixels) and
        ``duration`` (seconds or ``"1:30"``) override its values).

        Raises:
            InputError: an argument of the wrong type (exit 2).
            StoryboardError: the storyboard or an override is invalid (names file, line and field; exit 2).
        """
        source, name = _storyboard_source(storyboard)
        return plan_storyboard(
            source,
            self.geometry,
            name=name,
            seed=check_seed(seed),
            resolution=_check_resolution(resolution),
            duration=_check_duration(duration),
        )

    def check_outputs(
        self,
        plan: Plan,
        output: str | Path | None,
        *,
        overwrite: bool = False,
        save_latents: str | Path | None = None,
    ) -> None:
        """Check, before anything is fetched or loaded, that ``plan``'s video can be written to ``output``
        (and its latents to ``save_latents``): not there already unless ``overwrite``, a writable folder,
        enough free space. Nothing is created.

        Raises:
            OutputError: a file exists (without ``overwrite``), or cannot be written (exit 4).
        """
        from .video import check_free_space, check_output, estimate_mp4_bytes

        for path in (output, save_latents):
            if path is not None and Path(path).exists() and not overwrite and not Path(path).is_dir():
                raise OutputError(
                    f"{path} already exists; pass overwrite=True to replace it, or another path"
                )
        if output is not None:
            check_output(output, overwrite=overwrite)
            check_free_space(output, estimate_mp4_bytes(plan.width, plan.height, plan.num_video_frames))
        if save_latents is not None:
            check_output(save_latents, overwrite=overwrite)
            g = self.geometry
            h, w = g.latent_size(plan.width, plan.height)
            check_free_space(save_latents, 4 * plan.num_latent_frames * g.latent_channels * h * w)

    # ------------------------------------------------------------------ memory
    def estimate_memory(
        self,
        plans: Iterable[Plan] = (),
        *,
        resolution: tuple[int, int] | None = None,
        keep_text_encoder: bool = False,
        text_device: str | None = None,
        text_dtype: torch.dtype | None = None,
    ) -> MemoryEstimate:
        """The peak host RAM and GPU memory of making ``plans`` (the largest resolution counts; none: the
        ``resolution`` ``(width, height)`` or the model's native size), from the parts' files and the
        architecture, or, for parts not downloaded yet, their known numbers; nothing is fetched (a spec's
        small transformer config aside, when it is not a known one) or loaded
        (:func:`~longlive_cli.memory.estimate_memory`). Prompts found in the embedding cache are read (they
        are small) so that a run with every prompt cached is estimated without the text encoder.
        ``keep_text_encoder``: the encoder stays loaded beside the video model on ``text_device`` in
        ``text_dtype`` (a live session).

        Raises:
            ModelError: a part's config or header cannot be read, or its size is not known.
        """
        plans = list(plans)
        sizes = [(p.width, p.height) for p in plans] or [resolution or self.geometry.native_resolution]
        width, height = max(sizes, key=lambda wh: wh[0] * wh[1])
        missing = self.prompts.missing(prompt_numbers(plans, self._cut_prefix)) if plans else []
        try:
            self._config_for_estimate()
            inputs = inputs_for_model(
                self.spec,
                self.paths,
                device=self.device,
                dtypes=self._part_dtypes(text_dtype),
                width=width,
                height=height,
                encode_text=bool(missing) and self.prompts.kept is None,
                text_device=text_device or self.device,
                keep_text_encoder=keep_text_encoder,
                convert=self._conversion_due(),
                int8=self.int8 is not None and not self._ready,
                cuda_available=torch.cuda.is_available(),
                video_loaded=self._model is not None,
            )
        except (OSError, ValueError, KeyError) as err:
            raise ModelError(f"cannot estimate the memory of {self.spec.name}: {err}") from None
        return estimate_memory(inputs)

    def _config_for_estimate(self) -> None:
        """Fetch the transformer config (a small JSON) of a spec whose config is neither local nor known."""
        from .memory import transformer_config

        try:
            transformer_config(self.spec, self.paths)
        except KeyError:
            parts = [p for p in components(self.spec, for_text=False) if p.role == "transformer_config"]
            self.paths.update(fetch_components(self.spec, parts, offline=self.offline))

    def _conversion_due(self) -> bool:
        """A first-run conversion of the generator is due: no converted-weights cache file for it yet."""
        if self._model is not None or not any(p.role == "generator" for p in components(self.spec)):
            return False
        if "generator" not in self.paths:
            return True  # not even downloaded
        from .models.loaders import converted_cache_file

        cached = converted_cache_file(self.spec, self.paths, self.dtype)
        return cached is not None and not cached.is_file()

    def available_memory(self) -> tuple[int | None, int | None]:
        """Bytes free now: host RAM (:func:`~longlive_cli.memory.host_available_bytes`) and, on CUDA, GPU
        memory (``torch.cuda.mem_get_info``; None on the CPU)."""
        gpu = torch.cuda.mem_get_info()[0] if self.device == "cuda" else None
        return host_available_bytes(), gpu

    def check_memory(
        self,
        plans: Iterable[Plan] = (),
        *,
        resolution: tuple[int, int] | None = None,
        keep_text_encoder: bool = False,
    ) -> MemoryEstimate | None:
        """Estimate (:meth:`estimate_memory`, with ``resolution`` and ``keep_text_encoder`` as there: a live
        session checks ``check_memory(resolution=(w, h), keep_text_encoder=True)`` before loading anything)
        and, unless ``memory_check`` is off, refuse a run that cannot fit. Returns the estimate, or None when
        a part's file cannot be read (a warning; loading it will report the problem).

        Raises:
            InputError: the estimated peak does not fit; the message names the phase, its parts, what is
                available and the ways out (``--text-dtype``, ``--dtype``, ``--int8``, ``--resolution``,
                ``--device``) with their peaks (exit 2).
        """
        try:
            estimate = self.estimate_memory(plans, resolution=resolution, keep_text_encoder=keep_text_encoder)
        except ModelError as err:  # the loader will say what is wrong with the file, in its own words
            log.warning("%s; memory not checked", err)
            return None
        host, gpu = self.available_memory()
        peak = f"peak RAM {human_bytes(estimate.host_peak)}"
        if self.device == "cuda":
            peak += f", GPU {human_bytes(estimate.gpu_peak)}"
        have = f"{human_bytes(host)} RAM" if host is not None else "RAM unknown"
        if gpu is not None:
            have += f", {human_bytes(gpu)} GPU"
        log.info("memory estimate: %s; available: %s", peak, have)
        for line in estimate.describe():
            log.debug("  %s", line)
        if self.memory_check:
            check_fits(estimate, host_available=host, gpu_available=gpu)
        return estimate

    # ------------------------------------------------------------------ prompts
    @property
    def _cut_prefix(self) -> str:
        """The text before a new shot's first prompt (LongLive 2.0's scene-cut prefix, spec key
        ``scene_cut_prefix``)."""
        return self.spec.sampler.scene_cut_prefix

    def encode_prompts(self, plans: Iterable[Plan]) -> None:
        """Have every prompt of ``plans`` encoded: from memory, from the embedding cache, or else with the
        UMT5 encoder (the kept one, or one fetched, loaded, used and freed). A run whose prompts are all
        cached never loads the encoder (:meth:`longlive_cli.text.PromptEncoder.encode`).

        Each unique prompt is encoded once and kept on the CPU, trimmed to its tokens
        (``[1, n, text_dim]``), and written to the cache. A prompt over the encoder's 512 tokens is truncated,
        with a logged warning naming it (on a cache hit too).

        Raises:
            ModelError: the text encoder cannot be had or loaded.
        """
        self.prompts.encode(prompt_numbers(plans, self._cut_prefix))

    def prompt_embedding(self, text: str) -> torch.Tensor:
        """The embedding ``[1, n, text_dim]`` (on the CPU) of a prompt encoded already.

        Raises:
            KeyError: ``text`` has not been encoded (:meth:`encode_prompts` first).
        """
        return self.prompts.embedding(text)

    def encode_prompt(self, text: str) -> torch.Tensor:
        """One prompt's UMT5 embedding ``[1, n, text_dim]`` (``n`` its tokens, at most 512) on the CPU, for a
        live session: from memory, else the embedding cache, else the session's text encoder, which is
        loaded on the first miss and kept (:meth:`text_encoder`) so the next prompt does not wait for it. Call
        ``text_encoder(keep=True, resolution=...)`` first to check the memory at the session's resolution
        (else the model's native one is assumed).

        Raises:
            ModelError: the text encoder cannot be loaded. InputError: it does not fit in memory.
        """
        if self.prompts.missing({text: 0}):
            self.text_encoder(keep=True)
            self.prompts.encode({text: 0})
        return self.prompts.embedding(text)

    def text_encoder_placement(self, resolution: tuple[int, int] | None = None) -> TextPlacement:
        """Where a text encoder kept beside the video model goes (a live session): on the GPU in
        ``text_dtype`` when the memory estimate with both (video at ``resolution``, default native) fits in
        the GPU's free memory; else on the CPU in bf16 (memory-mapped from a bf16 file: no copy). On a CPU
        run: the CPU, in ``text_dtype``.
        """
        if self.device != "cuda":
            return TextPlacement("cpu", self.text_dtype, "the model runs on the CPU")
        estimate = self.estimate_memory(resolution=resolution, keep_text_encoder=True, text_device="cuda")
        free = torch.cuda.mem_get_info()[0]  # a loaded video model is in use already and not estimated
        need = estimate.gpu_peak
        if fits(estimate, None, free):
            reason = f"fits beside the video model on the GPU ({human_bytes(need)} of {human_bytes(free)})"
            return TextPlacement("cuda", self.text_dtype, reason)
        reason = (
            f"the video model and the encoder need {human_bytes(need)} of GPU memory, {human_bytes(free)} "
            "is free: the encoder runs on the CPU in bf16"
        )
        return TextPlacement("cpu", torch.bfloat16, reason)

    def text_encoder(self, *, keep: bool = True, resolution: tuple[int, int] | None = None) -> TextEncoder:
        """The UMT5 encoder, placed by :meth:`text_encoder_placement`. With ``keep`` it is loaded once and
        kept for the session (:meth:`encode_prompt` and :meth:`encode_prompts` use it) until
        :meth:`release_text_encoder`; without, the caller owns a fresh one. The memory check covers the
        encoder beside the video model.

        Raises:
            ModelError: the encoder cannot be loaded. InputError: it does not fit in memory.
        """
        kept = self.prompts.kept
        if keep and kept is not None:
            return kept
        place = self.text_encoder_placement(resolution)
        log.info(
            "text encoder: %s, %s: %s", place.device, str(place.dtype).removeprefix("torch."), place.reason
        )
        if self.memory_check:
            estimate = self.estimate_memory(
                resolution=resolution,
                keep_text_encoder=True,
                text_device=place.device,
                text_dtype=place.dtype,
            )
            host, gpu = self.available_memory()
            check_fits(estimate, host_available=host, gpu_available=gpu if place.device == "cuda" else None)
        return self.prompts.keep(place) if keep else self.prompts.load(place.device, place.dtype)

    @property
    def text_encoder_bytes(self) -> int:
        """Bytes of the weights of the text encoder kept by :meth:`text_encoder` (0 when none is kept)."""
        return self.prompts.kept_bytes

    def release_text_encoder(self) -> None:
        """Free the encoder kept by :meth:`text_encoder` (embeddings already made stay)."""
        self.prompts.release()

    # ------------------------------------------------------------------ the video model
    def load(self) -> Model:
        """The video model (transformer + VAE), fetched (:meth:`fetch`) and loaded on the first call (unless
        given to the constructor), then quantized (with ``int8``) and configured with ``options`` once.
        Call :meth:`check_memory` first: loading does not check.

        Raises:
            ModelError: the weights cannot be had or read.
        """
        if self._model is None:
            from .models.loaders import load_model

            self.fetch(for_text=False)
            log.info("precision: %s", self.describe_dtypes())
            started = time.perf_counter()
            self._model = load_model(
                self.spec,
                device=self.device,
                dtype=self.dtype,
                vae_dtype=self.vae_dtype,
                offline=self.offline,
            )
            log.info("loaded the video model in %.1f s", time.perf_counter() - started)
        if not self._ready:
            if self.int8 is not None:
                from .models.int8 import quantize_transformer

                self.quantize_summary = quantize_transformer(self._model.transformer.wan, self.int8)
                log.info("%s", describe_quantization(self.quantize_summary))
            self._model.transformer.configure(self.options, frames_per_block=self.geometry.frames_per_block)
            log.info("speed options: %s", self.options.describe())
            self._ready = True
        return self._model

    @property
    def loaded(self) -> bool:
        """Whether the video model is loaded (by :meth:`load`, or given to the constructor)."""
        return self._model is not None

    def stream(
        self,
        plan: Plan,
        output: str | Path | None,
        *,
        seed: int | None = None,
        overwrite: bool = False,
        save_latents: str | Path | None = None,
        should_stop: Callable[[], bool] | None = None,
        keep_partial: bool = True,
        times: StageTimes | None = None,
        prompt_embeds: Sequence[torch.Tensor] | None = None,
        schedule: PromptSchedule | None = None,
        outputs: Sequence[VideoOutput] = (),
        should_finish: Callable[[], bool] | None = None,
        sinks: Sequence[VideoOutput] | None = None,
    ) -> Iterator[Event]:
        """Make ``plan``'s video into the MP4 ``output``, yielding the pipeline's events
        (:func:`longlive_cli.pipeline.generate_video` documents them and the arguments).

        ``seed`` (default: the plan's, else a random one reported in ``GenerationStarted``);
        ``prompt_embeds``: one ``[1, n, text_dim]`` per segment instead of encoding the prompts (a weighted
        prompt's blended conditioning, :func:`~longlive_cli.blending.segment_embedding`);
        ``schedule``: a prompt source that replaces the plan's prompts (``longlive live``); ``outputs`` and
        ``should_finish`` as the pipeline's (``sinks``: the old name of ``outputs``, deprecated).

        The checks come first, in the module's order (arguments, outputs, memory), when the first event is
        asked for; only then are the weights fetched, the prompts encoded and the model loaded.

        Raises:
            InputError, ModelError, OutputError: as :meth:`check_outputs`, :meth:`check_memory`,
                :meth:`encode_prompts`, :meth:`load` and the pipeline; InputError for an argument of the
                wrong type or a seed out of range.
        """
        from .pipeline import VideoRequest, generate_video

        if sinks is not None:
            warnings.warn("stream(sinks=...) is now stream(outputs=...)", DeprecationWarning, stacklevel=2)
            outputs = (*outputs, *sinks)
        if not isinstance(plan, Plan):
            raise InputError(
                f"plan={_describe(plan)}: pass a Plan (from LongLive.plan), or call generate(storyboard)"
            )
        the_seed = check_seed(seed)
        target = _check_path(output, "output")
        latents = _check_path(save_latents, "save_latents")
        self.check_outputs(plan, target, overwrite=_check_flag(overwrite, "overwrite"), save_latents=latents)
        texts = [t for s in plan.segments for t in s.texts]
        texts += [self._cut_prefix + s.text for s in plan.segments if s.cut]
        encode = prompt_embeds is None and schedule is None
        if self._model is None or (encode and not self.prompts.encoded(texts)):
            self.check_memory([plan])
        conditioning: PromptSchedule | Sequence[torch.Tensor]
        if schedule is not None:
            conditioning = schedule
        elif prompt_embeds is not None:
            conditioning = prompt_embeds
        else:
            self.encode_prompts([plan])
            conditioning = self.prompts.segment_embeddings(plan)
        request = VideoRequest(
            plan=plan,
            model=self.load(),
            conditioning=conditioning,
            output=target,
            seed=resolve_seed(plan.seed if the_seed is None else the_seed),
            overwrite=overwrite,
            save_latents=latents,
            should_stop=should_stop,
            keep_partial=keep_partial,
            times=times,
            outputs=tuple(outputs),
            should_finish=should_finish,
            cut_embeds=self.prompts.cut_embeddings(plan, self._cut_prefix) if encode else None,
        )
        yield from generate_video(request)

    def generate(
        self, storyboard: Plan | StoryboardSource, output: str | Path, **kwargs: Any
    ) -> Finished | Interrupted:
        """:meth:`stream` to the end; returns the last event. ``storyboard`` is a ``Plan`` or anything
        :meth:`plan` takes; ``kwargs`` as :meth:`stream`'s."""
        plan = storyboard if isinstance(storyboard, Plan) else self.plan(storyboard)
        last: Event | None = None
        for last in self.stream(plan, output, **kwargs):  # noqa: B007
            pass
        assert isinstance(last, Finished | Interrupted)
        return last


def _local_paths(spec: ModelSpec) -> dict[str, Path]:
    """The local path of each of ``spec``'s parts that is there now (nothing is downloaded), each checked
    for what it is (:func:`~longlive_cli.models.weightfiles.check_weight_path`).

    Raises:
        longlive_cli.hub.WeightsUnavailableError: a local (not Hub) source does not exist (exit 3).
        longlive_cli.models.weightfiles.WeightFileError: a part is a FIFO, a device, empty or cut (exit 3).
    """
    from .models.spec import ROLE_NAMES
    from .models.weightfiles import check_weight_path

    paths = {}
    for part in components(spec):
        if part.source.repo is None:  # a local file: missing is an error now, not a download later
            paths.update(fetch_components(spec, [part], offline=True))
        elif (path := find_local(part.source, folder=part.folder)) is not None:
            what = ROLE_NAMES.get(part.role.split(".")[0], part.role)
            paths[part.role] = check_weight_path(path, what, folder=part.folder)
    return paths


def describe_quantization(summary: QuantizeSummary) -> str:
    """One line: how many layers were quantized and what the transformer weighs before and after."""
    return (
        f"{summary.scheme}: {summary.quantized_layers} linear layers quantized, {summary.kept_layers} kept "
        f"in the compute dtype; transformer {human_bytes(summary.bytes_before)} -> "
        f"{human_bytes(summary.bytes_after)}"
    )


def generate(
    storyboard: Plan | StoryboardSource,
    output: str | Path | None,
    *,
    model: str | ModelSpec = DEFAULT_MODEL,
    device: str = "auto",
    dtype: str | torch.dtype = "auto",
    text_dtype: str | torch.dtype = "auto",
    options: RuntimeOptions | Mapping[str, Any] | None = None,
    offline: bool = False,
    int8: str | None = None,
    embed_cache: bool = True,
    memory_check: bool = True,
    rope: str | None = None,
    loras: str | LoraSpec | Sequence[str | LoraSpec] = (),
    decoder: str | None = None,
    seed: int | None = None,
    resolution: str | tuple[int, int] | None = None,
    duration: str | float | None = None,
    overwrite: bool = False,
    save_latents: str | Path | None = None,
    should_stop: Callable[[], bool] | None = None,
    keep_partial: bool = True,
    times: StageTimes | None = None,
    outputs: Sequence[VideoOutput] = (),
    should_finish: Callable[[], bool] | None = None,
) -> Finished | Interrupted:
    """Make one video in one call: ``LongLive.from_pretrained(model, ...).generate(storyboard, output, ...)``.

    ``model`` to ``decoder`` are :meth:`LongLive.from_pretrained`'s; ``seed``, ``resolution`` and
    ``duration`` override the storyboard's (:meth:`LongLive.plan`; ``seed`` also applies to a given
    ``Plan``); ``overwrite`` to ``should_finish`` are :meth:`LongLive.stream`'s. Checks run in the module's
    order: nothing is downloaded before the storyboard, the outputs and the memory are checked.

    Returns:
        The last event: ``Finished`` (``path``, ``num_video_frames``, ``duration_s``, ``wall_s``) or
        ``Interrupted`` (``should_stop`` returned True).

    Raises:
        InputError, ModelError, OutputError, GenerationError: see :mod:`longlive_cli.errors`.
    """
    ll = LongLive.from_pretrained(
        model,
        device=device,
        dtype=dtype,
        text_dtype=text_dtype,
        options=options,
        offline=offline,
        int8=int8,
        embed_cache=embed_cache,
        memory_check=memory_check,
        rope=rope,
        loras=loras,
        decoder=decoder,
    )
    if isinstance(storyboard, Plan):
        plan = storyboard
    else:
        plan = ll.plan(storyboard, seed=seed, resolution=resolution, duration=duration)
    return ll.generate(
        plan,
        output,  # type: ignore[arg-type]  # None: outputs only
        seed=seed,
        overwrite=overwrite,
        save_latents=save_latents,
        should_stop=should_stop,
        keep_partial=keep_partial,
        times=times,
        outputs=outputs,
        should_finish=should_finish,
    )


# --------------------------------------------------------------------------- download and decode
@dataclass(frozen=True)
class DownloadedPart:
    """One file of a model after :func:`download`: its ``role``, ``source``, local ``path`` (None: missing
    from the cache, when only checking), ``size`` in bytes on disk (0 when missing) and the ``known_size``
    the Hub states (``"11.4 GB"``), if any."""

    role: str
    source: str
    path: Path | None
    size: int
    known_size: str | None


def download(
    model: str | ModelSpec = DEFAULT_MODEL,
    *,
    loras: str | LoraSpec | Sequence[str | LoraSpec] = (),
    decoder: str | None = None,
    check_only: bool = False,
    on_part: Callable[[DownloadedPart], None] | None = None,
) -> list[DownloadedPart]:
    """Fetch every file of ``model`` (its LoRAs and the chosen decoder's included) into the Hugging Face
    cache; with ``check_only`` (or ``HF_HUB_OFFLINE=1``) only look at the cache. ``on_part`` is called after
    each file. Returns one :class:`DownloadedPart` per file, in load order (none for a built-in model).

    Raises:
        ModelError: unknown model; a file cannot be downloaded (exit 3). Missing files when only checking
            are not raised: their ``path`` is None.
        InputError: a LoRA written wrongly or an unknown decoder (exit 2).
    """
    from .hub import WeightsUnavailableError, disk_size, fetch, hub_offline

    spec = resolve_spec(model, loras=_as_loras(loras), decoder=_check_name(decoder, "decoder"))
    offline = hub_offline(check_only)
    parts = []
    for part in components(spec):
        try:
            path: Path | None = fetch(
                part.source, offline=offline, folder=part.folder, size=part.size, model=spec.name
            )
        except WeightsUnavailableError:
            if not offline:
                raise
            path = None
        done = DownloadedPart(
            part.role, str(part.source), path, disk_size(path) if path is not None else 0, part.size
        )
        parts.append(done)
        if on_part is not None:
            on_part(done)
    return parts


def decode(
    latents: str | Path,
    output: str | Path,
    *,
    model: str | ModelSpec | None = None,
    decoder: str | None = None,
    device: str = "auto",
    overwrite: bool = False,
    offline: bool = False,
) -> Path:
    """Turn a latents file from ``generate --save-latents`` (``[1, L, 16, h, w]``, read a block at a time)
    into the MP4 ``output`` with ``model``'s decoder (None: the model recorded in the file, else the default)
    or ``decoder``. The output is checked before anything is loaded. Returns the MP4's path.

    Raises:
        InputError: not a latents file, a bad argument. OutputError: ``output`` exists (without
            ``overwrite``) or cannot be written. ModelError: the decoder cannot be had or loaded.
    """
    from .decoders import make_decoder
    from .latents import open_latents
    from .models.loaders import load_decoder_only
    from .pipeline import decode_to_video
    from .precision import safetensors_header
    from .video import check_output

    target = _check_path(output, "output", optional=False)
    source = _check_path(latents, "latents", optional=False)
    assert target is not None and source is not None
    if target.exists() and not _check_flag(overwrite, "overwrite") and not target.is_dir():
        raise OutputError(f"{target} already exists; pass overwrite=True (--force) to replace it")
    check_output(target, overwrite=overwrite)
    name = _check_name(decoder, "decoder")
    spec = resolve_spec(model, decoder=name) if model is not None else None  # a bad --model first
    z, plan = open_latents(source)
    if spec is None:
        recorded = safetensors_header(source).get("__metadata__", {}).get("model")  # readable: opened above
        spec = resolve_spec(recorded if recorded in PRESETS else DEFAULT_MODEL, decoder=name)
    network = load_decoder_only(spec, device=resolve_device(device), offline=offline)
    return decode_to_video(
        make_decoder(spec.decoder, network),
        z,
        target,
        fps=plan["fps"],
        frames_per_block=plan.get("frames_per_block", spec.geometry.frames_per_block),
        overwrite=overwrite,
    )
