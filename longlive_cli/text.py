"""Text stage: a storyboard's prompts -> one UMT5 embedding per prompt, each unique prompt encoded once.

The encoder and Wan's prompt rules (cleaning, 512 tokens, zero rows past the tokens) are
:class:`~longlive_cli.models.umt5.TextEncoder`; this stage decides what is encoded and what is kept.
:class:`PromptEncoder` is the prompt side of a :class:`~longlive_cli.api.LongLive`: it takes each prompt's
embedding from memory, from the prompt-embedding cache (:mod:`longlive_cli.embed_cache`) or from the UMT5
encoder, which it loads for one batch and frees, or keeps loaded for a live session.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .embed_cache import EmbeddingCache, files_identity

if TYPE_CHECKING:
    from .models.spec import ModelSpec
    from .models.umt5 import TextEncoder
    from .storyboard import Plan

__all__ = ["PromptEncoder", "TextPlacement", "encode_prompts", "prompt_numbers"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextPlacement:
    """Where the text encoder of a session goes (:meth:`longlive_cli.api.LongLive.text_encoder_placement`):
    ``device`` (``cpu`` or ``cuda``), the compute ``dtype`` and, in words, ``reason``."""

    device: str
    dtype: torch.dtype
    reason: str


def prompt_numbers(plans: Iterable[Plan], scene_cut_prefix: str = "") -> dict[str, int]:
    """Every text of ``plans``' segments -> its 1-based segment number in the first plan that has it (a
    weighted prompt's texts are encoded one by one, then blended); a segment that starts a new shot
    (``cut: true``) also has its first block's text, ``scene_cut_prefix + text`` (LongLive 2.0, official
    ``utils/dataset.py`` ``_apply_shot_durations``)."""
    number: dict[str, int] = {}
    for plan in plans:
        for seg in plan.segments:
            for text in seg.texts:
                number.setdefault(text, seg.index + 1)
            if seg.cut:
                number.setdefault(scene_cut_prefix + seg.text, seg.index + 1)
    return number


class PromptEncoder:
    """The prompt side of a model: UMT5 embeddings ``[1, n, text_dim]`` (``n`` the prompt's tokens, at most
    ``text_len``; on the CPU) from memory, the embedding cache, or the encoder.

    Args:
        spec: the model (its text encoder and tokenizer, and the transformer's ``text_dim``).
        paths: the model's local files by role, shared with the owner; the ``text_encoder`` and
            ``tokenizer`` entries appear once fetched.
        fetch: makes the text parts local (downloads them) and adds them to ``paths``; called before the
            encoder is loaded.
        device, dtype: where and in what dtype prompts are encoded (the kept encoder's place wins).
        offline: load from the local Hugging Face cache only.
        use_cache: read and write the prompt-embedding cache.
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        paths: MutableMapping[str, Path],
        fetch: Callable[[], object],
        device: str,
        dtype: torch.dtype,
        offline: bool = False,
        use_cache: bool = True,
    ) -> None:
        self.spec, self.paths, self._fetch = spec, paths, fetch
        self.device, self.dtype, self.offline, self.use_cache = device, dtype, offline, use_cache
        self._embeds: dict[str, torch.Tensor] = {}  # prompt text -> [1, n, text_dim] on the CPU
        self._caches: dict[tuple[str, torch.dtype], EmbeddingCache] = {}
        self._kept: TextEncoder | None = None
        self.placement: TextPlacement | None = None  # the kept encoder's

    # ------------------------------------------------------------------ what is there
    @property
    def target(self) -> tuple[str, torch.dtype]:
        """Where prompts are encoded now: the kept encoder's place, else ``(device, dtype)``."""
        if self.placement is not None:
            return self.placement.device, self.placement.dtype
        return self.device, self.dtype

    def embedding(self, text: str) -> torch.Tensor:
        """The embedding of ``text`` encoded (or read from the cache) already.

        Raises:
            KeyError: ``text`` has not been encoded.
        """
        return self._embeds[text]

    def segment_embeddings(self, plan: Plan) -> list[torch.Tensor]:
        """One conditioning per segment of ``plan`` (a weighted prompt's texts blended:
        :func:`~longlive_cli.blending.segment_embedding`); every text must be encoded already."""
        from .blending import segment_embedding

        return [segment_embedding(s, self._embeds) for s in plan.segments]

    def cut_embeddings(self, plan: Plan, scene_cut_prefix: str) -> dict[int, torch.Tensor]:
        """Segment index -> the embedding of its first block (``scene_cut_prefix + text``), for the segments
        of ``plan`` that start a new shot; every such text must be encoded already
        (:func:`prompt_numbers`)."""
        return {s.index: self._embeds[scene_cut_prefix + s.text] for s in plan.segments if s.cut}

    def encoded(self, texts: Iterable[str]) -> bool:
        """Whether every one of ``texts`` is in memory (nothing is read)."""
        return all(t in self._embeds for t in texts)

    def missing(self, number: Mapping[str, int]) -> list[str]:
        """The prompts of ``number`` (text -> its number, 0 for a live prompt) neither in memory nor in the
        embedding cache; those in the cache are read into memory (truncation warnings included)."""
        cache = self._cache(*self.target)
        out = []
        for text, index in number.items():
            if text in self._embeds:
                continue
            hit = cache.get(text) if cache is not None else None
            if hit is None:
                out.append(text)
                continue
            self._embeds[text] = hit[0]
            self._warn_truncated(text, hit[1], index)
        return out

    # ------------------------------------------------------------------ encoding
    def encode(self, number: Mapping[str, int]) -> None:
        """Have every prompt of ``number`` (text -> its number) encoded: from memory, the cache, else the
        kept encoder or one loaded for this call and freed after; new ones are written to the cache.

        Raises:
            ModelError: the text encoder cannot be had or loaded.
        """
        texts = self.missing(number)
        if not texts:
            return
        kept = self._kept is not None
        device, dtype = self.target
        encoder = self._kept if self._kept is not None else self.load(device, dtype)
        cache = self._cache(device, dtype)
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
                _free(device)

    def load(self, device: str, dtype: torch.dtype) -> TextEncoder:
        """A fresh UMT5 encoder on ``device`` in ``dtype`` (its files fetched first).

        Raises:
            ModelError: it cannot be had or loaded.
        """
        from .models.loaders import load_text_encoder

        self._fetch()
        started = time.perf_counter()
        encoder = load_text_encoder(self.spec, device=device, dtype=dtype, offline=self.offline)
        log.info(
            "loaded the text encoder (%s, %s) in %.1f s",
            device,
            str(dtype).removeprefix("torch."),
            time.perf_counter() - started,
        )
        return encoder

    def keep(self, placement: TextPlacement) -> TextEncoder:
        """Load the encoder at ``placement`` and keep it (a live session) until :meth:`release`."""
        if self._kept is None:
            self._kept = self.load(placement.device, placement.dtype)
            self.placement = placement
        return self._kept

    @property
    def kept(self) -> TextEncoder | None:
        """The encoder kept by :meth:`keep`, or None."""
        return self._kept

    @property
    def kept_bytes(self) -> int:
        """Bytes of the kept encoder's weights (0 when none is kept)."""
        if self._kept is None:
            return 0
        return sum(p.numel() * p.element_size() for p in self._kept.text_encoder.parameters())

    def release(self) -> None:
        """Free the kept encoder (embeddings made stay)."""
        if self._kept is None:
            return
        device = self.placement.device if self.placement else "cpu"
        self._kept, self.placement = None, None
        _free(device)

    @property
    def cache(self) -> EmbeddingCache | None:
        """The prompt-embedding cache prompts are read from and written to now (:attr:`target`'s); None
        when it is off or the encoder's files are not local yet (nothing to name the entries by)."""
        return self._cache(*self.target)

    # ------------------------------------------------------------------ helpers
    def _cache(self, device: str, dtype: torch.dtype) -> EmbeddingCache | None:
        if not self.use_cache:
            return None
        if (device, dtype) not in self._caches:
            from .memory import TransformerArch, transformer_config
            from .models.spec import embeddings_cache_dir

            if self.spec.base is None:
                import transformers

                ident: Any = {"builtin": "tiny-random UMT5", "seed": 0, "torch": torch.__version__}
                ident["transformers"] = transformers.__version__
            elif not {"text_encoder", "tokenizer"} <= self.paths.keys():
                return None
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
                max_length=self.spec.geometry.text_len,
                dtype=dtype,
                device=device,
                text_dim=text_dim,
            )
        return self._caches[device, dtype]

    def _warn_truncated(self, text: str, tokens: int, number: int | None = None) -> None:
        # ``number``: the prompt's 1-based number in its storyboard (0 or None: a live prompt, unnumbered)
        limit = self.spec.geometry.text_len
        if tokens > limit:
            log.warning(
                "prompt %shas %d tokens; the text encoder reads the first %d and ignores the rest: %s...",
                f"{number} " if number else "",
                tokens,
                limit,
                text[:60],
            )


def _free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def encode_prompts(
    encoder: TextEncoder,
    prompts: Sequence[str],
    *,
    on_truncate: Callable[[int, str, int], None] | None = None,
) -> list[torch.Tensor]:
    """Encode each unique prompt once; return one ``[1, n, d_model]`` tensor per input prompt.

    ``n`` is the prompt's token count after truncation (``</s>`` included, at most ``max_length``): the
    rows after it are exactly zero in :meth:`TextEncoder.encode`'s output (Wan's padding rule) and are
    not kept, so a storyboard's prompts hold memory in proportion to their tokens, not 512 rows each;
    :meth:`CausalWanTransformer.encode_prompt` pads them back with zeros. Duplicates are found by exact
    string equality (order of first appearance kept) and map to the same tensor object. Each unique
    prompt gets its own forward pass (batch of 1), so its embedding does not depend on which other
    prompts share the storyboard. ``on_truncate(index, prompt, token_count)`` is called, before
    encoding, for every input index whose prompt has more than ``encoder.max_length`` tokens (count incl.
    ``</s>``, before truncation). Raises ``TypeError`` for a bare ``str``.
    """
    from .models.umt5 import as_prompt_list

    prompts = as_prompt_list(prompts)
    unique = list(dict.fromkeys(prompts))
    if not unique:
        return []
    counts = dict(zip(unique, encoder.token_counts(unique), strict=True))
    if on_truncate is not None:
        for index, prompt in enumerate(prompts):
            if counts[prompt] > encoder.max_length:
                on_truncate(index, prompt, counts[prompt])
    # clone(): a slice would keep the whole padded tensor alive.
    embeds = {p: encoder.encode([p])[:, : min(counts[p], encoder.max_length)].clone() for p in unique}
    return [embeds[p] for p in prompts]
