"""The front door: load a model once, plan storyboards, make videos.

>>> from longlive_cli import LongLive
>>> ll = LongLive.from_pretrained("tiny-random", device="cpu")
>>> result = ll.generate("examples/panda_short.yaml", "panda.mp4")    # doctest: +SKIP
>>> for event in ll.stream(ll.plan("story.yaml", seed=3), "out.mp4"):  # doctest: +SKIP
...     print(event)

or in one call, as ``whisper.load_model(...).transcribe(...)``:

>>> import longlive_cli
>>> longlive_cli.generate("story.yaml", "out.mp4", model="tiny-random", device="cpu")  # doctest: +SKIP

:meth:`LongLive.from_pretrained` resolves the model and finds every weight file first (a missing file or an
unreachable Hub is reported within seconds), but loads nothing heavy. Before anything large is loaded, the
run's peak memory is estimated and a run that cannot fit is refused (:mod:`longlive_cli.memory`). The
prompts of whatever is planned are taken from the prompt-embedding cache (:mod:`longlive_cli.embed_cache`)
or encoded with the UMT5 encoder, which is then freed, before the video model (transformer + VAE) is loaded
once; :meth:`LongLive.stream` does all of this when it has not been done yet. Each part computes in its own
dtype (:mod:`longlive_cli.precision`, :attr:`LongLive.dtypes`). For a live session,
:meth:`LongLive.text_encoder` keeps the encoder loaded and :meth:`LongLive.encode_prompt` encodes one prompt
through the cache. Errors are :class:`~longlive_cli.errors.LongLiveError` subclasses.
"""

from __future__ import annotations

import gc
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .embed_cache import EmbeddingCache, files_identity
from .errors import InputError, ModelError
from .events import Event, Finished, Interrupted
from .geometry import Geometry
from .logs import quiet_noisy_imports
from .memory import (
    MemoryEstimate,
    TransformerArch,
    check_fits,
    estimate_memory,
    fits,
    host_available_bytes,
    human_bytes,
    inputs_for_model,
    memory_check_disabled,
    transformer_config,
)
from .models.loaders import text_encoder_stored_dtype
from .models.spec import (
    DEFAULT_MODEL,
    LoraSpec,
    ModelSpec,
    components,
    embeddings_cache_dir,
    fetch_components,
    resolve_spec,
)
from .plans import StoryboardSource, plan_storyboard
from .precision import PartDtypes
from .runtime import DTYPES, RuntimeOptions, StageTimes, resolve_device, resolve_dtype
from .storyboard import Plan

if TYPE_CHECKING:
    from .models.int8 import QuantizeSummary
    from .models.loaders import Model
    from .models.umt5 import TextEncoder
    from .pipeline import FrameSink
    from .schedule import PromptSchedule

__all__ = ["LongLive", "TextPlacement", "generate", "human_bytes", "resolve_seed", "resolve_spec"]

log = logging.getLogger(__name__)
quiet_noisy_imports()  # torchao builds without optional kernels warn when diffusers imports them


def resolve_seed(seed: int | None) -> int:
    """``seed``, or a fresh random one (reported in the events so the video can be made again)."""
    return secrets.randbelow(2**31) if seed is None else seed


@dataclass(frozen=True)
class TextPlacement:
    """Where the text encoder of a session goes (:meth:`LongLive.text_encoder_placement`): ``device``
    (``cpu`` or ``cuda``), the compute ``dtype`` and, in words, ``reason``."""

    device: str
    dtype: torch.dtype
    reason: str


class LongLive:
    """A model ready to make videos: its spec, device, precision and speed options, loaded on first use.

    Build it with :meth:`from_pretrained`. Attributes: ``spec``
    (:class:`~longlive_cli.models.spec.ModelSpec`),
    ``device`` (``"cpu"`` or ``"cuda"``), ``dtype`` (the transformer's compute dtype), ``text_dtype`` and
    ``vae_dtype`` (the text encoder's and the VAE's; :attr:`dtypes` has all three), ``options``
    (:class:`~longlive_cli.runtime.RuntimeOptions`), ``int8`` (a scheme to quantize the transformer with after
    loading, or None), ``embed_cache`` (use the prompt-embedding cache), ``memory_check`` (refuse runs that
    cannot fit), ``paths`` (the local file of each part, by role).
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
        self.text_dtype = (
            text_dtype if text_dtype is not None else text_encoder_stored_dtype(spec, self.paths)
        )
        self.vae_dtype = torch.float32 if device == "cpu" else dtype
        self.embed_cache, self.memory_check = embed_cache, memory_check and not memory_check_disabled()
        self.quantize_summary: QuantizeSummary | None = None
        self._model = model
        self._ready = False  # quantized (with int8) and configured with options
        self._embeds: dict[str, torch.Tensor] = {}  # prompt text -> [1, n, text_dim] on the CPU
        self._caches: dict[tuple[str, torch.dtype], EmbeddingCache] = {}
        self._text: TextEncoder | None = None  # kept loaded by text_encoder(keep=True)
        self._text_placement: TextPlacement | None = None

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
        loras: Sequence[str | LoraSpec] = (),
        decoder: str | None = None,
    ) -> LongLive:
        """Resolve ``model`` (a preset name, a spec file, or a folder with ``longlive-model.yaml``) and find
        its files (downloading them into the Hugging Face cache unless ``offline``).

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
            loras: user LoRAs merged into the transformer at load time, after the model's own: each
                ``SOURCE[:SCALE]`` (a Hub reference ``owner/repo:path`` or a local file; scale 1 by default)
                or a :class:`~longlive_cli.models.spec.LoraSpec`
                (:mod:`longlive_cli.models.user_loras` lists the formats read).
            decoder: ``wan``, ``lightvae``, ``taehv`` or ``lighttae`` in place of the model's (None: keep it;
                :mod:`longlive_cli.decoders`).

        Raises:
            ModelError: unknown model, bad spec file, weights missing or unreachable (exit 3).
            InputError: unusable device, dtype, scheme or rope, ``int8`` on a quantized model, or a LoRA
                written wrongly or given for a quantized model, or an unknown decoder (exit 2).
        """
        spec = resolve_spec(model, rope, loras, decoder)
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
        paths = fetch_components(spec, components(spec), offline=offline)
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
            paths=paths,
        )

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
        names = {v: k for k, v in DTYPES.items()}

        def name(dtype: torch.dtype) -> str:
            return names.get(dtype) or str(dtype).removeprefix("torch.")

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
        a file path, YAML text, a mapping or a ``Storyboard``; ``seed``, ``resolution`` and ``duration``
        override its values).

        Raises:
            StoryboardError: the storyboard or an override is invalid (names file, line and field; exit 2).
        """
        return plan_storyboard(storyboard, self.geometry, seed=seed, resolution=resolution, duration=duration)

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
        architecture; nothing is loaded (:func:`~longlive_cli.memory.estimate_memory`). Prompts found in the
        embedding cache are read (they are small) so that a run with every prompt cached is estimated
        without the text encoder. ``keep_text_encoder``: the encoder stays loaded beside the video model on
        ``text_device`` in ``text_dtype`` (a live session).

        Raises:
            ModelError: a part's config or header cannot be read.
        """
        plans = list(plans)
        sizes = [(p.width, p.height) for p in plans] or [resolution or self.geometry.native_resolution]
        width, height = max(sizes, key=lambda wh: wh[0] * wh[1])
        missing = self._lookup(self._prompts(plans)) if plans else []
        convert = False
        if self._model is None:
            from .models.loaders import converted_cache_file

            cached = converted_cache_file(self.spec, self.paths, self.dtype)
            convert = cached is not None and not cached.is_file()
        try:
            inputs = inputs_for_model(
                self.spec,
                self.paths,
                device=self.device,
                dtypes=self._part_dtypes(text_dtype),
                width=width,
                height=height,
                encode_text=bool(missing) and self._text is None,
                text_device=text_device or self.device,
                keep_text_encoder=keep_text_encoder,
                convert=convert,
                int8=self.int8 is not None and not self._ready,
                cuda_available=torch.cuda.is_available(),
                video_loaded=self._model is not None,
            )
        except (OSError, ValueError, KeyError) as err:
            raise ModelError(f"cannot estimate the memory of {self.spec.name}: {err}") from None
        return estimate_memory(inputs)

    def available_memory(self) -> tuple[int | None, int | None]:
        """Bytes free now: host RAM (:func:`~longlive_cli.memory.host_available_bytes`) and, on CUDA, GPU
        memory (``torch.cuda.mem_get_info``; None on the CPU)."""
        gpu = torch.cuda.mem_get_info()[0] if self.device == "cuda" else None
        return host_available_bytes(), gpu

    def check_memory(self, plans: Iterable[Plan]) -> MemoryEstimate | None:
        """Estimate (:meth:`estimate_memory`) and, unless ``memory_check`` is off, refuse a run that cannot
        fit. Returns the estimate, or None when a part's file cannot be read (a warning; loading it will
        report the problem).

        Raises:
            InputError: the estimated peak does not fit; the message names the phase, its parts, what is
                available and the ways out (``--text-dtype``, ``--dtype``, ``--int8``, ``--resolution``,
                ``--device``) with their peaks (exit 2).
        """
        try:
            estimate = self.estimate_memory(plans)
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
    @staticmethod
    def _prompts(plans: Iterable[Plan]) -> dict[str, int]:
        number: dict[str, int] = {}  # prompt -> its 1-based number in the first plan that has it
        for plan in plans:
            for seg in plan.segments:
                for text in seg.texts:  # a weighted prompt's texts are encoded one by one, then blended
                    number.setdefault(text, seg.index + 1)
        return number

    def _embedding_cache(self, device: str, dtype: torch.dtype) -> EmbeddingCache | None:
        if not self.embed_cache:
            return None
        if (device, dtype) not in self._caches:
            if self.spec.base is None:
                import transformers

                ident: Any = {"builtin": "tiny-random UMT5", "seed": 0, "torch": torch.__version__}
                ident["transformers"] = transformers.__version__
            else:
                ident = {role: files_identity(self.paths[role]) for role in ("text_encoder", "tokenizer")}
            try:
                text_dim = TransformerArch.from_config(transformer_config(self.spec, self.paths)).text_dim
            except (OSError, ValueError, KeyError) as err:  # loading will report it
                log.debug("no prompt-embedding cache: the transformer config cannot be read (%s)", err)
                return None
            self._caches[device, dtype] = EmbeddingCache(
                embeddings_cache_dir(),
                encoder=ident,
                max_length=self.geometry.text_len,
                dtype=dtype,
                device=device,
                text_dim=text_dim,
            )
        return self._caches[device, dtype]

    def _text_target(self) -> tuple[str, torch.dtype]:
        """Where prompts are encoded now: the kept encoder's place, else the model's device."""
        if self._text_placement is not None:
            return self._text_placement.device, self._text_placement.dtype
        return self.device, self.text_dtype

    def _warn_truncated(self, text: str, tokens: int, number: int | None = None) -> None:
        # ``number``: the prompt's 1-based number in its storyboard (0 or None: a live prompt, unnumbered)
        if tokens > self.geometry.text_len:
            log.warning(
                "prompt %shas %d tokens; the text encoder reads the first %d and ignores the rest: %s...",
                f"{number} " if number else "",
                tokens,
                self.geometry.text_len,
                text[:60],
            )

    def _lookup(self, number: Mapping[str, int]) -> list[str]:
        """The prompts of ``number`` (text -> number) neither encoded yet nor in the embedding cache; those in
        the cache are read (truncation warnings included)."""
        cache = self._embedding_cache(*self._text_target())
        missing = []
        for text, index in number.items():
            if text in self._embeds:
                continue
            hit = cache.get(text) if cache is not None else None
            if hit is None:
                missing.append(text)
                continue
            self._embeds[text] = hit[0]
            self._warn_truncated(text, hit[1], index)
        return missing

    def _encode(self, texts: list[str], number: Mapping[str, int]) -> None:
        """Encode ``texts`` with the kept encoder, or one loaded for this call and freed after; store them in
        memory and in the embedding cache."""
        from .text import encode_prompts

        kept = self._text is not None
        device, dtype = self._text_target()
        encoder = self._text if kept else self._load_text_encoder(device, dtype)
        assert encoder is not None
        cache = self._embedding_cache(device, dtype)
        started = time.perf_counter()
        try:
            counts = dict(zip(texts, encoder.token_counts(texts), strict=True))
            for text in texts:
                self._warn_truncated(text, counts[text], number.get(text))
            for text, embed in zip(texts, encode_prompts(encoder, texts), strict=True):
                self._embeds[text] = embed.cpu()  # off the GPU until its switch comes
                if cache is not None:
                    cache.put(text, self._embeds[text], counts[text])
            log.info("encoded %d prompt(s) in %.1f s", len(texts), time.perf_counter() - started)
        finally:
            if not kept:
                del encoder
                gc.collect()
                if device == "cuda":
                    torch.cuda.empty_cache()

    def _load_text_encoder(self, device: str, dtype: torch.dtype) -> TextEncoder:
        from .models.loaders import load_text_encoder

        started = time.perf_counter()
        encoder = load_text_encoder(self.spec, device=device, dtype=dtype, offline=self.offline)
        log.info(
            "loaded the text encoder (%s, %s) in %.1f s",
            device,
            str(dtype).removeprefix("torch."),
            time.perf_counter() - started,
        )
        return encoder

    def encode_prompts(self, plans: Iterable[Plan]) -> None:
        """Have every prompt of ``plans`` encoded: from memory, from the embedding cache, or else with the
        UMT5 encoder (the kept one, or one loaded, used and freed). A run whose prompts are all cached never
        loads the encoder.

        Each unique prompt is encoded once and kept on the CPU, trimmed to its tokens
        (``[1, n, text_dim]``), and written to the cache. A prompt over the encoder's 512 tokens is truncated,
        with a logged warning naming it (on a cache hit too).

        Raises:
            ModelError: the text encoder cannot be loaded.
        """
        number = self._prompts(plans)
        missing = self._lookup(number)
        if missing:
            self._encode(missing, number)

    def encode_prompt(self, text: str) -> torch.Tensor:
        """One prompt's UMT5 embedding ``[1, n, text_dim]`` (``n`` its tokens, at most 512) on the CPU, for a
        live session: from memory, else the embedding cache, else the session's text encoder, which is
        loaded on the first miss and kept (:meth:`text_encoder`) so the next prompt does not wait for it. Call
        ``text_encoder(keep=True, resolution=...)`` first to check the memory at the session's resolution
        (else the model's native one is assumed).

        Raises:
            ModelError: the text encoder cannot be loaded. InputError: it does not fit in memory.
        """
        if self._lookup({text: 0}):
            self.text_encoder(keep=True)
            self._encode([text], {})
        return self._embeds[text]

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
        if keep and self._text is not None:
            return self._text
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
        encoder = self._load_text_encoder(place.device, place.dtype)
        if keep:
            self._text, self._text_placement = encoder, place
        return encoder

    @property
    def text_encoder_bytes(self) -> int:
        """Bytes of the weights of the text encoder kept by :meth:`text_encoder` (0 when none is kept)."""
        encoder = self._text
        if encoder is None:
            return 0
        return sum(p.numel() * p.element_size() for p in encoder.text_encoder.parameters())

    def release_text_encoder(self) -> None:
        """Free the encoder kept by :meth:`text_encoder` (embeddings already made stay)."""
        if self._text is None:
            return
        device = self._text_placement.device if self._text_placement else "cpu"
        self._text, self._text_placement = None, None
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()

    def load(self) -> Model:
        """The video model (transformer + VAE), loaded on the first call (unless given to the constructor),
        then quantized (with ``int8``) and configured with ``options`` once.

        Raises:
            ModelError: the weights cannot be read.
        """
        if self._model is None:
            from .models.loaders import load_model

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
        prompt_embeds: list[torch.Tensor] | None = None,
        schedule: PromptSchedule | None = None,
        sinks: Sequence[FrameSink] = (),
        should_finish: Callable[[], bool] | None = None,
    ) -> Iterator[Event]:
        """Make ``plan``'s video into the MP4 ``output``, yielding the pipeline's events
        (:func:`longlive_cli.pipeline.generate` documents them and the arguments).

        ``seed`` (default: the plan's, else a random one reported in ``GenerationStarted``);
        ``prompt_embeds``: one ``[1, n, text_dim]`` per segment instead of encoding the prompts (a weighted
        prompt's blended conditioning, :func:`~longlive_cli.blending.segment_embedding`);
        ``schedule``: a prompt source that replaces the plan's prompts (``longlive live``); ``sinks`` and
        ``should_finish`` as the pipeline's. Before anything large is loaded, :meth:`check_memory` refuses a
        run that cannot fit.

        Raises:
            InputError, ModelError, OutputError: as :meth:`check_memory`, :meth:`encode_prompts`,
                :meth:`load` and the pipeline.
        """
        from .pipeline import generate as run_pipeline

        texts = [t for s in plan.segments for t in s.texts]
        # A live session (``schedule``) encodes with the encoder it placed and memory-checked itself.
        unencoded = schedule is None and prompt_embeds is None and any(t not in self._embeds for t in texts)
        if self._model is None or unencoded:
            self.check_memory([plan])
        if prompt_embeds is None and schedule is None:
            from .blending import segment_embedding

            self.encode_prompts([plan])
            prompt_embeds = [segment_embedding(s, self._embeds) for s in plan.segments]
        model = self.load()
        yield from run_pipeline(
            plan,
            model,
            prompt_embeds or [],
            output,
            seed=resolve_seed(plan.seed if seed is None else seed),
            overwrite=overwrite,
            save_latents=save_latents,
            should_stop=should_stop,
            keep_partial=keep_partial,
            times=times,
            schedule=schedule,
            sinks=sinks,
            should_finish=should_finish,
        )

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


def describe_quantization(summary: QuantizeSummary) -> str:
    """One line: how many layers were quantized and what the transformer weighs before and after."""
    return (
        f"{summary.scheme}: {summary.quantized_layers} linear layers quantized, {summary.kept_layers} kept "
        f"in the compute dtype; transformer {human_bytes(summary.bytes_before)} -> "
        f"{human_bytes(summary.bytes_after)}"
    )


def generate(
    storyboard: StoryboardSource,
    output: str | Path,
    *,
    model: str | ModelSpec = DEFAULT_MODEL,
    device: str = "auto",
    dtype: str | torch.dtype = "auto",
    text_dtype: str | torch.dtype = "auto",
    offline: bool = False,
    seed: int | None = None,
    resolution: str | tuple[int, int] | None = None,
    duration: str | float | None = None,
    overwrite: bool = False,
    rope: str | None = None,
    loras: Sequence[str | LoraSpec] = (),
    embed_cache: bool = True,
    memory_check: bool = True,
    **kwargs: Any,
) -> Finished | Interrupted:
    """Make one video in one call: ``LongLive.from_pretrained(model, ...).generate(storyboard, output)``.

    ``seed``, ``resolution`` and ``duration`` override the storyboard's (:meth:`LongLive.plan`); ``kwargs`` go
    to :meth:`LongLive.stream` (``save_latents``, ``should_stop``, ...); the other arguments are
    :meth:`LongLive.from_pretrained`'s.

    Raises:
        InputError, ModelError, OutputError, GenerationError: see :mod:`longlive_cli.errors`.
    """
    ll = LongLive.from_pretrained(
        model,
        device=device,
        dtype=dtype,
        text_dtype=text_dtype,
        offline=offline,
        embed_cache=embed_cache,
        memory_check=memory_check,
        rope=rope,
        loras=loras,
    )
    plan = ll.plan(storyboard, seed=seed, resolution=resolution, duration=duration)
    return ll.generate(plan, output, overwrite=overwrite, **kwargs)
