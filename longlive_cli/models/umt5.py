"""The UMT5 text encoder (transformers) with Wan's prompt rules, from either release of Wan2.1.

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

Two sources of the same UMT5-XXL encoder load into the same transformers model:

* a diffusers-layout folder (``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``: ``text_encoder/`` holds a
  ``UMT5EncoderModel`` with d_model 4096 as ~22.7 GB of float32 shards, ``tokenizer/`` the google/umt5-xxl
  tokenizer) through :meth:`TextEncoder.from_pretrained`;
* the original Wan2.1 release (``Wan-AI/Wan2.1-T2V-1.3B``: ``models_t5_umt5-xxl-enc-bf16.pth``, 11.4 GB
  of bfloat16 weights in the key layout of Wan's own ``T5Encoder``, and the tokenizer folder
  ``google/umt5-xxl/``) through :meth:`TextEncoder.from_wan_checkpoint`, which renames the keys with
  :func:`umt5_state_dict_from_wan` and runs the encoder in float32 as LongLive does.

Tests use :func:`build_tiny_text_encoder`: a byte-level tokenizer and a 2-layer UMT5 built in-process,
in the same formats as the real model.
"""

from __future__ import annotations

import copy
import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import transformers
from packaging.version import Version
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from torch import Tensor
from transformers import AutoTokenizer, PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

from ..geometry import WAN21
from .keys import key_list, natural_key

__all__ = [
    "TEXT_LEN",
    "TextEncoder",
    "build_tiny_text_encoder",
    "build_tiny_tokenizer",
    "clean_prompt",
    "tiny_umt5_config",
    "umt5_state_dict_from_wan",
    "umt5_xxl_config",
]

TEXT_LEN = WAN21.text_len
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


def as_prompt_list(prompts: Sequence[str]) -> list[str]:
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
        attn_implementation: str | None = None,
    ) -> TextEncoder:
        """Load a diffusers-layout folder or Hub repo (``text_encoder/`` + ``tokenizer/``).

        E.g. ``Wan-AI/Wan2.1-T2V-1.3B-Diffusers`` or a folder written by :meth:`save_pretrained`.
        ``torch_dtype`` None keeps transformers' default; LongLive runs the encoder in float32.
        ``attn_implementation`` None keeps transformers' default (``"sdpa"``); ``"eager"`` computes
        attention as Wan2.1 ``T5Attention`` does (einsum + bias, float32 softmax) and reproduces the
        official encoder bit for bit on CPU, where sdpa differs by ~1e-6 relative.
        Honours ``HF_HUB_OFFLINE``. Raises whatever transformers raises for a missing or malformed
        folder (``OSError`` / ``EnvironmentError``).
        """
        path = str(path_or_repo)
        model_kwargs: dict = {"subfolder": subfolder_encoder}
        if attn_implementation is not None:
            model_kwargs["attn_implementation"] = attn_implementation
        if torch_dtype is not None:
            # transformers renamed `torch_dtype` to `dtype` in 4.56; the old name warns in 5.x.
            key = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
            model_kwargs[key] = torch_dtype
        model = UMT5EncoderModel.from_pretrained(path, **model_kwargs)
        if device is not None:
            model = model.to(device)
        tokenizer = AutoTokenizer.from_pretrained(path, subfolder=subfolder_tokenizer)
        return cls(model, tokenizer, max_length=max_length)

    @classmethod
    def from_wan_checkpoint(
        cls,
        pth_path: str | Path,
        tokenizer_path: str | Path | PreTrainedTokenizerFast,
        *,
        config: Any = None,  # UMT5Config | dict | None
        torch_dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        max_length: int = TEXT_LEN,
        attn_implementation: str | None = None,
    ) -> TextEncoder:
        """Load the original Wan2.1 UMT5 encoder file + a tokenizer folder (no diffusers layout needed).

        E.g. ``models_t5_umt5-xxl-enc-bf16.pth`` and ``google/umt5-xxl/`` of ``Wan-AI/Wan2.1-T2V-1.3B``
        (what Wan2.1 ``T5EncoderModel`` and LongLive ``utils/wan_wrapper.py`` ``WanTextEncoder`` load). The
        file is read with ``torch.load(..., weights_only=True, mmap=True)`` (never a plain unpickle), its
        keys renamed by :func:`umt5_state_dict_from_wan` and loaded strictly into a ``UMT5EncoderModel``
        built from ``config`` (a ``UMT5Config``; a dict overrides fields of :func:`umt5_xxl_config`;
        default :func:`umt5_xxl_config`).

        ``torch_dtype`` None means float32: LongLive builds the encoder in float32 and loads the bfloat16
        file into it (bf16 → fp32 is exact). Tensors are cast and moved one at a time, so ``device="cuda"``
        never holds a float32 copy in host memory. ``attn_implementation`` as in :meth:`from_pretrained`
        (None: transformers' default, the same as :meth:`from_pretrained` gets). The tokenizer is
        ``AutoTokenizer.from_pretrained(tokenizer_path)`` (Wan2.1 ``HuggingfaceTokenizer``; or
        ``tokenizer_path`` is a tokenizer already loaded); local folders need no network.

        Raises:
            FileNotFoundError: ``pth_path`` does not exist.
            ValueError: the file is not a flat dict of tensors, or it has missing / unexpected keys (named,
                in Wan's key names) or tensors whose shapes do not fit ``config`` (named with both shapes).
        """
        pth_path = Path(pth_path)
        if isinstance(config, dict):  # overrides on the umt5-xxl config
            config = UMT5Config.from_dict({**umt5_xxl_config().to_dict(), **config})
        config = umt5_xxl_config() if config is None else copy.deepcopy(config)
        if attn_implementation is not None:
            config._attn_implementation = attn_implementation
        dtype = torch.float32 if torch_dtype is None else torch_dtype

        wan_sd = _load_torch_state_dict(pth_path)
        expected = _wan_umt5_keys(int(config.num_layers))
        missing = sorted(expected - wan_sd.keys(), key=natural_key)
        unexpected = sorted(wan_sd.keys() - expected, key=natural_key)
        if missing or unexpected:
            raise ValueError(
                f"{pth_path}: not a Wan2.1 UMT5 encoder checkpoint for a {config.num_layers}-layer config "
                f"(wan/modules/t5.py T5Encoder keys, shared_pos=False). Missing keys: "
                f"{key_list(missing)}; unexpected keys: {key_list(unexpected)}. Pass the "
                "models_t5_umt5-xxl-enc-bf16.pth file of Wan-AI/Wan2.1-T2V-1.3B, or a `config` whose "
                "num_layers matches the file."
            )

        with torch.device("meta"):  # no 22 GB random init: every parameter comes from the file
            model = UMT5EncoderModel(config)
        target_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        bad = [
            f"{wan_key} {tuple(wan_sd[wan_key].shape)} (model expects {target_shapes[hf_key]})"
            for wan_key in sorted(wan_sd, key=natural_key)
            for hf_key in _hf_keys_for_wan_key(wan_key)
            if tuple(wan_sd[wan_key].shape) != target_shapes[hf_key]
        ]
        if bad:
            raise ValueError(
                f"{pth_path}: tensor shapes do not match the UMT5 config (vocab_size={config.vocab_size}, "
                f"d_model={config.d_model}, d_ff={config.d_ff}, num_heads={config.num_heads}, "
                f"d_kv={config.d_kv}, relative_attention_num_buckets="
                f"{config.relative_attention_num_buckets}): {key_list(bad)}. Pass the `config` this "
                "checkpoint was trained with (default: umt5_xxl_config())."
            )
        # Cast/move each tensor once (the embedding is shared by two transformers keys).
        hf_sd = umt5_state_dict_from_wan({k: v.to(device=device, dtype=dtype) for k, v in wan_sd.items()})
        result = model.load_state_dict(hf_sd, strict=False, assign=True)
        if result.missing_keys or result.unexpected_keys:  # guards the key table against transformers drift
            raise ValueError(
                f"{pth_path}: converted keys do not fit transformers' UMT5EncoderModel: missing "
                f"{key_list(result.missing_keys)}, unexpected {key_list(result.unexpected_keys)}. This "
                "transformers version lays UMT5 out differently; pin transformers or update the key table."
            )
        model.set_input_embeddings(model.shared)  # one embedding module again, as after from_pretrained
        model.requires_grad_(False)
        if isinstance(tokenizer_path, str | Path):
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path))
        else:  # a tokenizer already loaded
            tokenizer = tokenizer_path
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
        prompts = as_prompt_list(prompts)
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
        if not as_prompt_list(prompts):
            raise ValueError("encode() needs at least one prompt")
        input_ids, attention_mask = self.tokenize(prompts)
        hidden = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        # Wan: seq_len = mask.gt(0).sum(); u[seq_len:] = 0. The encoder still writes values into padded
        # rows (they attend to real tokens), so the mask alone does not zero them.
        seq_lens = attention_mask.gt(0).sum(dim=1)
        positions = torch.arange(hidden.shape[1], device=hidden.device)
        padded = positions[None, :] >= seq_lens[:, None]
        return hidden.masked_fill(padded[..., None], 0.0)


# ---------------------------------------------------------------------- original Wan2.1 checkpoint
def umt5_xxl_config() -> UMT5Config:
    """``UMT5Config`` of the encoder in Wan2.1's ``models_t5_umt5-xxl-enc-bf16.pth`` (google/umt5-xxl).

    Values from Wan2.1 ``wan/modules/t5.py``: ``umt5_xxl`` (vocab 256384, dim 4096, dim_attn 4096 over 64
    heads → ``d_kv`` 64, dim_ffn 10240, 24 encoder layers, 32 buckets, ``shared_pos=False`` → one relative
    position table per layer, as transformers' UMT5 has), ``T5RelativeEmbedding`` (``max_dist`` 128,
    bidirectional in the encoder), ``T5LayerNorm`` (RMS norm, eps 1e-6), ``T5FeedForward`` (``fc1(x) *
    gelu_tanh(gate(x))`` → ``gated-gelu``, whose ``gelu_new`` is the same tanh formula as Wan's ``GELU``)
    and ``T5Attention`` (no 1/sqrt(d) scaling, as transformers' UMT5 with ``scaling = 1.0``). Dropout is
    0 (Wan's 0.1 is inactive in eval mode). Pad id 0, eos id 1 as google/umt5-xxl.
    """
    return UMT5Config(
        vocab_size=256384,
        d_model=4096,
        d_kv=64,
        d_ff=10240,
        num_layers=24,
        num_heads=64,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        layer_norm_epsilon=1e-6,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )


# Wan2.1 T5Encoder (wan/modules/t5.py) → transformers UMT5EncoderModel, per block and at the top level.
_WAN_BLOCK_TO_HF = {
    "norm1.weight": "layer.0.layer_norm.weight",
    "attn.q.weight": "layer.0.SelfAttention.q.weight",
    "attn.k.weight": "layer.0.SelfAttention.k.weight",
    "attn.v.weight": "layer.0.SelfAttention.v.weight",
    "attn.o.weight": "layer.0.SelfAttention.o.weight",
    "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
    "norm2.weight": "layer.1.layer_norm.weight",
    "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",  # the GELU branch
    "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight",  # the linear branch
    "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight",
}
_WAN_TOP_TO_HF = {
    "token_embedding.weight": ("shared.weight", "encoder.embed_tokens.weight"),
    "norm.weight": ("encoder.final_layer_norm.weight",),
}
_WAN_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)$")


def _hf_keys_for_wan_key(key: str) -> tuple[str, ...]:
    """transformers keys for one Wan key; () when the key is not part of Wan's umt5 T5Encoder."""
    if key in _WAN_TOP_TO_HF:
        return _WAN_TOP_TO_HF[key]
    m = _WAN_BLOCK_KEY.match(key)
    if m and m[2] in _WAN_BLOCK_TO_HF:
        return (f"encoder.block.{int(m[1])}.{_WAN_BLOCK_TO_HF[m[2]]}",)
    return ()


def _wan_umt5_keys(num_layers: int) -> set[str]:
    """Every key of a Wan2.1 umt5 ``T5Encoder`` state dict with ``num_layers`` blocks."""
    keys = set(_WAN_TOP_TO_HF)
    keys.update(f"blocks.{i}.{name}" for i in range(num_layers) for name in _WAN_BLOCK_TO_HF)
    return keys


def umt5_state_dict_from_wan(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a Wan2.1 UMT5 encoder state dict to transformers ``UMT5EncoderModel`` keys.

    Source layout: Wan2.1 ``wan/modules/t5.py`` ``T5Encoder`` built by ``umt5_xxl(encoder_only=True)``
    (``shared_pos=False``), i.e. the keys of ``models_t5_umt5-xxl-enc-bf16.pth``:

    * ``token_embedding.weight`` [V, D] → ``shared.weight`` and ``encoder.embed_tokens.weight``;
    * ``norm.weight`` [D] → ``encoder.final_layer_norm.weight``;
    * per block, ``blocks.N.`` → ``encoder.block.N.`` and then:
      ``norm1.weight`` [D] → ``layer.0.layer_norm.weight``;
      ``attn.{q,k,v,o}.weight`` → ``layer.0.SelfAttention.{q,k,v,o}.weight``;
      ``pos_embedding.embedding.weight`` [B, H] → ``layer.0.SelfAttention.relative_attention_bias.weight``;
      ``norm2.weight`` [D] → ``layer.1.layer_norm.weight``;
      ``ffn.gate.0.weight`` [F, D] (GELU branch) → ``layer.1.DenseReluDense.wi_0.weight``;
      ``ffn.fc1.weight`` [F, D] (linear branch) → ``layer.1.DenseReluDense.wi_1.weight``;
      ``ffn.fc2.weight`` [D, F] → ``layer.1.DenseReluDense.wo.weight``.

    (V vocab, D d_model, F d_ff, B buckets, H heads; shapes are the same on both sides.) Tensors are
    passed through unchanged (same objects, no copy, no transpose: both use ``nn.Linear`` / ``nn.Embedding``
    with the same shapes); the token embedding appears under both transformers keys.

    Raises:
        ValueError: a key is not part of Wan's umt5 ``T5Encoder`` (listed), e.g. a shared-position T5
            (``pos_embedding.embedding.weight`` at the top level), a decoder, or a non-Wan file.
    """
    out: dict[str, Tensor] = {}
    unknown = []
    for key, value in sd.items():
        targets = _hf_keys_for_wan_key(key)
        if not targets:
            unknown.append(key)
        for target in targets:
            out[target] = value
    if unknown:
        raise ValueError(
            f"keys that are not part of Wan2.1's umt5 T5Encoder (wan/modules/t5.py): "
            f"{key_list(sorted(unknown, key=natural_key))}; pass the state dict of "
            "models_t5_umt5-xxl-enc-bf16.pth"
        )
    return out


def _load_torch_state_dict(path: Path) -> dict[str, Tensor]:
    """``torch.load(path, weights_only=True)`` (memory-mapped when the file allows) → flat tensor dict.

    Raises FileNotFoundError for a missing file and ValueError (CheckpointError) for anything but a
    readable flat ``{str: Tensor}``.
    """
    from .weights import load_flat_state_dict

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    return load_flat_state_dict(
        path, "UMT5 checkpoint", hint="pass the original Wan2.1 checkpoint file itself"
    )


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
