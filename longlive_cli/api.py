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
unreachable Hub is reported within seconds), but loads nothing heavy. The prompts of whatever is planned are
encoded with the UMT5 encoder, which is then freed, before the video model (transformer + VAE) is loaded
once; :meth:`LongLive.stream` does both when they have not been done yet. Errors are
:class:`~longlive_cli.errors.LongLiveError` subclasses.
"""

from __future__ import annotations

import gc
import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .errors import InputError
from .events import Event, Finished, Interrupted
from .geometry import Geometry
from .logs import quiet_noisy_imports
from .models.spec import DEFAULT_MODEL, LoraSpec, ModelSpec, components, fetch_components, resolve_spec
from .plans import StoryboardSource, plan_storyboard
from .runtime import RuntimeOptions, StageTimes, resolve_device, resolve_dtype
from .storyboard import Plan

if TYPE_CHECKING:
    from .models.int8 import QuantizeSummary
    from .models.loaders import Model
    from .models.umt5 import TextEncoder
    from .pipeline import FrameSink
    from .schedule import PromptSchedule

__all__ = ["LongLive", "generate", "resolve_seed", "resolve_spec"]

log = logging.getLogger(__name__)
quiet_noisy_imports()  # torchao builds without optional kernels warn when diffusers imports them


def resolve_seed(seed: int | None) -> int:
    """``seed``, or a fresh random one (reported in the events so the video can be made again)."""
    return secrets.randbelow(2**31) if seed is None else seed


class LongLive:
    """A model ready to make videos: its spec, device, precision and speed options, loaded on first use.

    Build it with :meth:`from_pretrained`. Attributes: ``spec``
    (:class:`~longlive_cli.models.spec.ModelSpec`),
    ``device`` (``"cpu"`` or ``"cuda"``), ``dtype`` (the transformer's compute dtype), ``options``
    (:class:`~longlive_cli.runtime.RuntimeOptions`), ``int8`` (a scheme to quantize the transformer with after
    loading, or None).
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
    ) -> None:
        self.spec, self.device, self.dtype, self.options = spec, device, dtype, options
        self.offline, self.int8 = offline, int8
        self.quantize_summary: QuantizeSummary | None = None
        self._model = model
        self._ready = False  # quantized (with int8) and configured with options
        self._embeds: dict[str, torch.Tensor] = {}  # prompt text -> [1, n, text_dim] on the CPU
        self._encoder: TextEncoder | None = None  # kept by encode_prompt (live sessions)
        self._encoder_lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        model: str | ModelSpec = DEFAULT_MODEL,
        *,
        device: str = "auto",
        dtype: str | torch.dtype = "auto",
        options: RuntimeOptions | Mapping[str, Any] | None = None,
        offline: bool = False,
        int8: str | None = None,
        rope: str | None = None,
        loras: Sequence[str | LoraSpec] = (),
        decoder: str | None = None,
    ) -> LongLive:
        """Resolve ``model`` (a preset name, a spec file, or a folder with ``longlive-model.yaml``) and find
        its files (downloading them into the Hugging Face cache unless ``offline``).

        Args:
            model: what to load (or a :class:`~longlive_cli.models.spec.ModelSpec`).
            device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
            dtype: ``auto`` (bf16 on CUDA, float32 on CPU), ``bf16``, ``fp16``, ``float32`` or a torch dtype.
            options: speed switches, or a mapping of overrides (None: keep the device's default) for
                :meth:`RuntimeOptions.for_device` (all on with CUDA, off on the CPU).
            offline: use only the local Hugging Face cache.
            int8: quantize the transformer in memory after loading with this scheme (``w8a8``, ``w8``,
                ``fp8``; :mod:`longlive_cli.models.int8`).
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
        if int8 is not None:
            from .models.int8 import check_scheme

            if spec.quantized is not None:
                raise InputError(f"--int8: model {spec.name} is already quantized ({spec.scheme})")
            check_scheme(int8, dev)
        if isinstance(options, RuntimeOptions):
            opts = options
        else:
            opts = RuntimeOptions.for_device(dev, **(options or {}))
        fetch_components(spec, components(spec), offline=offline)
        return cls(spec, device=dev, dtype=torch_dtype, options=opts, offline=offline, int8=int8)

    @property
    def geometry(self) -> Geometry:
        """The model's numbers (fps, block size, strides, native resolution)."""
        return self.spec.geometry

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

    def encode_prompts(self, plans: Iterable[Plan]) -> None:
        """Encode every prompt of ``plans`` not encoded yet: the UMT5 encoder is loaded, used and freed.

        Each unique prompt is encoded once and kept on the CPU, trimmed to its tokens. A prompt over the
        encoder's 512 tokens is truncated, with a logged warning naming it.

        Raises:
            ModelError: the text encoder cannot be loaded.
        """
        from .models.loaders import load_text_encoder
        from .text import encode_prompts

        number: dict[str, int] = {}  # prompt -> its 1-based number in the first plan that has it
        for plan in plans:
            for seg in plan.segments:
                for text in seg.texts:  # a weighted prompt's texts are encoded one by one, then blended
                    number.setdefault(text, seg.index + 1)
        missing = [t for t in number if t not in self._embeds]
        if not missing:
            return

        def warn(index: int, text: str, tokens: int) -> None:
            log.warning(
                "prompt %d has %d tokens; the text encoder reads the first %d and ignores the rest: %s...",
                number[text],
                tokens,
                self.geometry.text_len,
                text[:60],
            )

        encoder = load_text_encoder(self.spec, device=self.device, dtype=self.dtype, offline=self.offline)
        try:
            for text, embed in zip(missing, encode_prompts(encoder, missing, on_truncate=warn), strict=True):
                self._embeds[text] = embed.cpu()  # off the GPU until its switch comes
        finally:
            del encoder
            gc.collect()
            if self.device == "cuda":
                torch.cuda.empty_cache()

    def load(self) -> Model:
        """The video model (transformer + VAE), loaded on the first call (unless given to the constructor),
        then quantized (with ``int8``) and configured with ``options`` once.

        Raises:
            ModelError: the weights cannot be read.
        """
        if self._model is None:
            from .models.loaders import load_model

            self._model = load_model(self.spec, device=self.device, dtype=self.dtype, offline=self.offline)
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
        ``should_finish`` as the pipeline's.

        Raises:
            InputError, ModelError, OutputError: as :meth:`encode_prompts`, :meth:`load` and the pipeline.
        """
        from .pipeline import generate as run_pipeline

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

    def encode_prompt(self, text: str) -> torch.Tensor:
        """One prompt's UMT5 embedding ``[1, n <= 512, text_dim]`` on the CPU (rows past its tokens dropped),
        keeping the text encoder loaded for the next call, as a live session needs;
        :meth:`release_text_encoder` frees it. Nothing is kept per prompt.

        Raises:
            ModelError: the text encoder cannot be loaded.
        """
        from .models.loaders import load_text_encoder
        from .text import encode_prompts

        with self._encoder_lock:
            if self._encoder is None:
                self._encoder = load_text_encoder(
                    self.spec, device=self.device, dtype=self.dtype, offline=self.offline
                )

            def warn(index: int, prompt: str, tokens: int) -> None:
                log.warning(
                    "the prompt has %d tokens; the text encoder reads the first %d",
                    tokens,
                    self.geometry.text_len,
                )

            return encode_prompts(self._encoder, [text], on_truncate=warn)[0].cpu()

    @property
    def text_encoder_bytes(self) -> int:
        """Bytes of the weights of the text encoder kept by :meth:`encode_prompt` (0 when none is kept)."""
        encoder = self._encoder
        if encoder is None:
            return 0
        return sum(p.numel() * p.element_size() for p in encoder.text_encoder.parameters())

    def release_text_encoder(self) -> None:
        """Free the text encoder kept by :meth:`encode_prompt`."""
        with self._encoder_lock:
            self._encoder = None
        gc.collect()
        if self.device == "cuda":
            torch.cuda.empty_cache()

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


def human_bytes(size: float) -> str:
    """``1234567`` -> ``1.2 MB`` (powers of 1000)."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} GB"  # pragma: no cover


def generate(
    storyboard: StoryboardSource,
    output: str | Path,
    *,
    model: str | ModelSpec = DEFAULT_MODEL,
    device: str = "auto",
    dtype: str | torch.dtype = "auto",
    offline: bool = False,
    seed: int | None = None,
    resolution: str | tuple[int, int] | None = None,
    duration: str | float | None = None,
    overwrite: bool = False,
    rope: str | None = None,
    loras: Sequence[str | LoraSpec] = (),
    **kwargs: Any,
) -> Finished | Interrupted:
    """Make one video in one call: ``LongLive.from_pretrained(model, ...).generate(storyboard, output)``.

    ``seed``, ``resolution`` and ``duration`` override the storyboard's (:meth:`LongLive.plan`); ``rope`` the
    model's temporal RoPE (``"relative"``: no length limit); ``loras`` as :meth:`LongLive.from_pretrained`'s;
    ``kwargs`` go to :meth:`LongLive.stream` (``save_latents``, ``should_stop``, ...).

    Raises:
        InputError, ModelError, OutputError, GenerationError: see :mod:`longlive_cli.errors`.
    """
    ll = LongLive.from_pretrained(model, device=device, dtype=dtype, offline=offline, rope=rope, loras=loras)
    plan = ll.plan(storyboard, seed=seed, resolution=resolution, duration=duration)
    return ll.generate(plan, output, overwrite=overwrite, **kwargs)
