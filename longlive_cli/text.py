"""Prompt → text embedding: tokenizer + UMT5 encoder (transformers), one embedding per unique prompt.

The Wan2.1 transformer cross-attends to a fixed block of ``TEXT_LEN`` = 512 UMT5 output rows per
prompt. The rule reproduced here is the one of Wan2.1 ``T5EncoderModel.__call__`` (``wan/modules/t5.py``)
and LongLive ``utils/wan_wrapper.py`` ``WanTextEncoder.forward``:

1. clean the prompt (``HuggingfaceTokenizer(clean='whitespace')``: ftfy fix if available, HTML-unescape
   twice, collapse whitespace runs to one space, strip);
2. tokenize with special tokens (UMT5 appends ``</s>``), pad to 512 on the right, truncate at 512;
3. run the encoder with the attention mask;
4. set every output row at a position >= the prompt's token count to exactly zero (Wan cuts the output
   at ``seq_len`` and zero-pads back to 512; it does not rely on the mask alone, and the padded rows of
   the raw encoder output are not zero).

Tests use :func:`build_tiny_text_encoder`: a byte-level tokenizer and a 2-layer UMT5 built in-process,
in the same formats as the real model (``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``: ``text_encoder/`` holds a
``UMT5EncoderModel`` with d_model 4096, ``tokenizer/`` the google/umt5-xxl tokenizer).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import transformers
from packaging.version import Version
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

__all__ = [
    "TEXT_LEN",
    "TextEncoder",
    "build_tiny_text_encoder",
    "build_tiny_tokenizer",
    "clean_prompt",
    "encode_prompts",
    "tiny_umt5_config",
]

TEXT_LEN = 512
"""UMT5 context length the Wan transformer cross-attends to (Wan2.1 ``text_len``)."""

_WHITESPACE_RUN = re.compile(r"\s+")


def clean_prompt(text: str) -> str:
    """Normalise a prompt the way Wan's tokenizer wrapper does before tokenizing.

    Rule: Wan2.1 ``wan/modules/tokenizers.py`` ``HuggingfaceTokenizer(clean='whitespace')`` (also
    diffusers ``WanPipeline``'s ``prompt_clean``): ``ftfy.fix_text`` (only when ftfy is installed, as in
    diffusers; it only changes mojibake), HTML-unescape twice, then every whitespace run becomes one
    space and the ends are stripped.
    """
    try:
        import ftfy  # optional: Wan requires it, diffusers uses it only when available
    except ImportError:
        pass
    else:
        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return _WHITESPACE_RUN.sub(" ", text).strip()


def _as_prompt_list(prompts: Sequence[str]) -> list[str]:
    # A bare str is a Sequence[str] of characters; encoding it letter by letter is never meant.
    if isinstance(prompts, str):
        raise TypeError("prompts must be a sequence of strings, not a single str; wrap it in a list")
    prompts = list(prompts)
    for p in prompts:
        if not isinstance(p, str):
            raise TypeError(f"every prompt must be a str, got {type(p).__name__}")
    return prompts


class TextEncoder:
    """UMT5 encoder (transformers ``UMT5EncoderModel``) + its tokenizer, with Wan's zero-padding rule.

    Args:
        text_encoder: a ``UMT5EncoderModel`` (anything with the same ``forward(input_ids,
            attention_mask) -> .last_hidden_state`` and ``config.d_model``). It is put in eval mode.
        tokenizer: the matching tokenizer (``AutoTokenizer`` / any ``PreTrainedTokenizerFast``); it must
            append ``</s>`` when called with ``add_special_tokens=True``, as the UMT5 tokenizer does.
        max_length: tokens per prompt after padding/truncation (Wan: 512).
        clean: apply :func:`clean_prompt` before tokenizing (Wan: yes).

    ``encode(prompts)`` returns ``[N, max_length, d_model]``: prompts tokenized with special tokens,
    padded on the right to ``max_length`` and truncated there (the tokenizer keeps the final ``</s>``),
    encoded with the attention mask, and every row at a position >= the prompt's (truncated) token
    count set to exactly zero (Wan2.1 ``T5EncoderModel.__call__`` / LongLive ``WanTextEncoder``).
    """

    def __init__(
        self,
        text_encoder: UMT5EncoderModel,
        tokenizer: PreTrainedTokenizerFast,
        *,
        max_length: int = TEXT_LEN,
        clean: bool = True,
    ) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.text_encoder = text_encoder.eval()  # dropout off: embeddings must be deterministic
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.clean = bool(clean)

    # ------------------------------------------------------------------ loading / saving
    @classmethod
    def from_pretrained(
        cls,
        path_or_repo: str | Path,
        *,
        torch_dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        subfolder_encoder: str = "text_encoder",
        subfolder_tokenizer: str = "tokenizer",
        max_length: int = TEXT_LEN,
    ) -> TextEncoder:
        """Load a diffusers-layout folder or Hub repo (``text_encoder/`` + ``tokenizer/``).

        E.g. ``Wan-AI/Wan2.1-T2V-1.3B-Diffusers`` or a folder written by :meth:`save_pretrained`.
        ``torch_dtype`` None keeps transformers' default; LongLive runs the encoder in float32.
        Honours ``HF_HUB_OFFLINE``. Raises whatever transformers raises for a missing or malformed
        folder (``OSError`` / ``EnvironmentError``).
        """
        path = str(path_or_repo)
        model_kwargs: dict = {"subfolder": subfolder_encoder}
        if torch_dtype is not None:
            # transformers renamed `torch_dtype` to `dtype` in 4.56; the old name warns in 5.x.
            key = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
            model_kwargs[key] = torch_dtype
        model = UMT5EncoderModel.from_pretrained(path, **model_kwargs)
        if device is not None:
            model = model.to(device)
        tokenizer = AutoTokenizer.from_pretrained(path, subfolder=subfolder_tokenizer)
        return cls(model, tokenizer, max_length=max_length)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``folder/text_encoder/`` (safetensors + config) and ``folder/tokenizer/`` (diffusers layout).

        Raises ``OSError`` if the folder cannot be written.
        """
        folder = Path(folder)
        self.text_encoder.save_pretrained(folder / "text_encoder")
        self.tokenizer.save_pretrained(folder / "tokenizer")

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        """Device of the encoder's parameters (where :meth:`encode` puts its output)."""
        return next(self.text_encoder.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the encoder's parameters (the dtype of :meth:`encode`'s output)."""
        for p in self.text_encoder.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.get_default_dtype()

    @property
    def text_dim(self) -> int:
        """Embedding width ``d_model`` (4096 for UMT5-XXL)."""
        return int(self.text_encoder.config.d_model)

    # ------------------------------------------------------------------ tokenizing / encoding
    def _prepare(self, prompts: Sequence[str]) -> list[str]:
        prompts = _as_prompt_list(prompts)
        return [clean_prompt(p) for p in prompts] if self.clean else prompts

    def tokenize(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask, both int64 ``[N, max_length]`` on :attr:`device`.

        Right padding (forced, whatever the tokenizer's default), truncation at ``max_length``,
        special tokens added. Raises ``TypeError`` for a bare ``str``.
        """
        batch = self.tokenizer(
            self._prepare(prompts),
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
            add_special_tokens=True,
            padding_side="right",  # the zeroing rule below assumes real tokens come first
            return_attention_mask=True,
            return_tensors="pt",
        )
        return batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)

    def token_counts(self, prompts: Sequence[str]) -> list[int]:
        """Tokens per prompt including the appended ``</s>``, before truncation.

        A count > :attr:`max_length` means :meth:`encode` truncates that prompt (to max_length - 1
        content tokens + ``</s>``). Raises ``TypeError`` for a bare ``str``.
        """
        prompts = self._prepare(prompts)
        if not prompts:
            return []
        # verbose=False: the caller decides how to warn about over-long prompts.
        ids = self.tokenizer(prompts, add_special_tokens=True, truncation=False, padding=False, verbose=False)
        return [len(x) for x in ids["input_ids"]]

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """Embed prompts: ``[N, max_length, d_model]`` (N prompts, token positions, channels).

        On :attr:`device`, in the encoder's dtype. Rows ``[i, j]`` with ``j >= `` the prompt's truncated
        token count (``</s>`` included) are exactly zero; all other rows are the encoder's
        ``last_hidden_state``. Raises ``ValueError`` for an empty list, ``TypeError`` for a bare ``str``.
        """
        if not _as_prompt_list(prompts):
            raise ValueError("encode() needs at least one prompt")
        input_ids, attention_mask = self.tokenize(prompts)
        hidden = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        # Wan: seq_len = mask.gt(0).sum(); u[seq_len:] = 0. The encoder still writes values into padded
        # rows (they attend to real tokens), so the mask alone does not zero them.
        seq_lens = attention_mask.gt(0).sum(dim=1)
        positions = torch.arange(hidden.shape[1], device=hidden.device)
        padded = positions[None, :] >= seq_lens[:, None]
        return hidden.masked_fill(padded[..., None], 0.0)


def encode_prompts(
    encoder: TextEncoder,
    prompts: Sequence[str],
    *,
    on_truncate: Callable[[int, str, int], None] | None = None,
) -> list[torch.Tensor]:
    """Encode each unique prompt once; return one ``[1, max_length, d_model]`` tensor per input prompt.

    Duplicates are found by exact string equality (order of first appearance kept) and map to the
    same tensor object. Each unique prompt gets its own forward pass (batch of 1), so its embedding does
    not depend on which other prompts share the storyboard. ``on_truncate(index, prompt, token_count)``
    is called, before encoding, for every input index whose prompt has more than ``encoder.max_length``
    tokens (count incl. ``</s>``, before truncation). Raises ``TypeError`` for a bare ``str``.
    """
    prompts = _as_prompt_list(prompts)
    unique = list(dict.fromkeys(prompts))
    if on_truncate is not None and unique:
        counts = dict(zip(unique, encoder.token_counts(unique), strict=True))
        for index, prompt in enumerate(prompts):
            if counts[prompt] > encoder.max_length:
                on_truncate(index, prompt, counts[prompt])
    embeds = {p: encoder.encode([p]) for p in unique}
    return [embeds[p] for p in prompts]


# ---------------------------------------------------------------------- tiny in-process models (tests)
_PAD, _EOS, _UNK = "<pad>", "</s>", "<unk>"


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer built in-process (no download), T5 conventions, 259 ids.

    ``<pad>`` = 0, ``</s>`` = 1, ``<unk>`` = 2 (T5/UMT5 ids), then one id per byte symbol: a BPE model
    with no merges over the 256-symbol ByteLevel alphabet, so one token per UTF-8 byte of the text.
    Its post-processor appends ``</s>`` like the UMT5 tokenizer. Round-trips through
    ``save_pretrained`` → ``AutoTokenizer.from_pretrained`` offline.
    """
    vocab = {_PAD: 0, _EOS: 1, _UNK: 2}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=_UNK))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.TemplateProcessing(
        single=f"$A {_EOS}", pair=f"$A {_EOS} $B {_EOS}", special_tokens=[(_EOS, 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=_PAD,
        eos_token=_EOS,
        unk_token=_UNK,
        model_max_length=TEXT_LEN,
        padding_side="right",
    )


def tiny_umt5_config(vocab_size: int) -> UMT5Config:
    """A 2-layer UMT5 config (d_model 32, d_ff 64, 2 heads × d_kv 16) with UMT5-XXL's structure.

    Same ``gated-gelu`` FFN, per-layer relative position bias and untied embeddings as google/umt5-xxl;
    8 relative-position buckets; dropout 0 so even train mode is deterministic; pad 0, eos 1.
    """
    return UMT5Config(
        vocab_size=int(vocab_size),
        d_model=32,
        d_ff=64,
        d_kv=16,
        num_layers=2,
        num_heads=2,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )


def build_tiny_text_encoder(seed: int = 0) -> TextEncoder:
    """:class:`TextEncoder` with :func:`build_tiny_tokenizer` and random float32 tiny UMT5 weights.

    Weights depend only on ``seed`` (drawn under a forked global RNG, so the caller's RNG state is
    untouched). ``text_dim`` is 32; ``max_length`` is :data:`TEXT_LEN`.
    """
    tokenizer = build_tiny_tokenizer()
    config = tiny_umt5_config(len(tokenizer))
    # transformers initialises weights from torch's global RNG; fork it so the seed stays local.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = UMT5EncoderModel(config)
    return TextEncoder(model.float(), tokenizer)
