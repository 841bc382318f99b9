"""The prompt-embedding cache: each prompt's UMT5 embedding kept on disk, so a run whose prompts are all
cached never loads the text encoder (11.4 GB for ``longlive-1.3b``, about 4.7 TFLOP per prompt).

One safetensors file per entry, ``<cache_root>/embeddings/<key>.safetensors``, holding the trimmed
embedding ``embedding`` ``[1, n, text_dim]`` (``n`` = the prompt's tokens, at most the token limit) in the
dtype it was computed in, and metadata: the format version, the key, the prompt's token count before
truncation (so the truncation warning is given on a hit too), the dtype and the shape.

The key is the SHA-256 of the prompt text exactly as given, the identity of the encoder's and the
tokenizer's files (resolved path, size and ``mtime_ns`` of every file: a Hub-cache file resolves to its
blob, named by its etag), the token limit, the dtype and the device type the embedding is computed in
(CPU and CUDA round differently; a cached embedding equals the one the run would compute). Replacing or
touching the encoder's file gives new keys, so a stale entry is never read.

Entries are written with :func:`~longlive_cli.fileio.atomic_output` (whole or absent, the user's umask). An
entry that cannot be read or does not match its key, shape or dtype is reported with a warning, recomputed
and rewritten. A cache that cannot be written only costs the shortcut (a warning, once).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .fileio import atomic_output

__all__ = ["EmbeddingCache", "files_identity"]

log = logging.getLogger(__name__)

FORMAT = "1"
_TENSOR = "embedding"
_DTYPE_NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "float32"}


def files_identity(path: str | Path) -> list[list[Any]]:
    """``[[relative name, size, mtime_ns], ...]`` of a file, or of every file under a folder (sorted), after
    resolving symbolic links, plus the resolved path first: what names the bytes without reading them.

    Raises:
        OSError: ``path`` does not exist.
    """
    path = Path(path).resolve(strict=True)
    if path.is_file():
        st = path.stat()
        return [[str(path), st.st_size, st.st_mtime_ns]]
    out: list[list[Any]] = [[str(path), 0, 0]]
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.resolve().stat()
        out.append([str(f.relative_to(path)), st.st_size, st.st_mtime_ns])
    return out


class EmbeddingCache:
    """Prompt embeddings on disk for one encoder, token limit, dtype and device.

    Args:
        folder: where entries live (created on the first write).
        encoder: what identifies the encoder's weights and tokenizer (JSON-serializable; e.g.
            :func:`files_identity` of both files, or a description of a built-in encoder).
        max_length: the token limit (512).
        dtype: the dtype embeddings are computed in.
        device: ``cpu`` or ``cuda``: where they are computed.
        text_dim: the embedding width the entries must have (4096 for UMT5-XXL).
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        encoder: Any,
        max_length: int,
        dtype: torch.dtype,
        device: str,
        text_dim: int,
    ) -> None:
        self.folder = Path(folder)
        self.max_length, self.dtype, self.text_dim = int(max_length), dtype, int(text_dim)
        self._ident = json.dumps(
            {
                "format": FORMAT,
                "encoder": encoder,
                "max_length": self.max_length,
                "dtype": _DTYPE_NAMES.get(dtype, str(dtype)),
                "device": torch.device(device).type,
            },
            sort_keys=True,
        )
        self._write_failed = False

    def key(self, text: str) -> str:
        """The entry's name for prompt ``text`` (64 hex digits)."""
        return hashlib.sha256(json.dumps([self._ident, text]).encode()).hexdigest()

    def path(self, text: str) -> Path:
        """The entry file for ``text`` (which may not exist)."""
        return self.folder / f"{self.key(text)}.safetensors"

    def get(self, text: str) -> tuple[torch.Tensor, int] | None:
        """The cached embedding of ``text`` ``[1, n, text_dim]`` (on the CPU, in the cache's dtype) and the
        prompt's token count before truncation; None when there is no usable entry (a damaged or
        mismatching one is reported with a warning and will be replaced by :meth:`put`)."""
        path = self.path(text)
        if not path.is_file():
            return None
        try:
            embed, tokens = self._read(path, self.key(text))
        except Exception as err:  # any damage is only a lost shortcut: recompute
            log.warning(
                "prompt-embedding cache entry %s is unusable (%s); encoding the prompt again", path, err
            )
            return None
        return embed, tokens

    def _read(self, path: Path, key: str) -> tuple[torch.Tensor, int]:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta: Mapping[str, str] = f.metadata() or {}
            if meta.get("format") != FORMAT or meta.get("key") != key:
                raise ValueError("its metadata does not name this prompt's key")
            if list(f.keys()) != [_TENSOR]:
                raise ValueError(f"it holds {list(f.keys())} instead of one '{_TENSOR}' tensor")
            embed = f.get_tensor(_TENSOR).clone()  # own memory: no mapping of a file that may be replaced
        n = embed.shape[1] if embed.ndim == 3 else -1
        if (
            embed.ndim != 3
            or embed.shape[0] != 1
            or not 1 <= n <= self.max_length
            or embed.shape[2] != self.text_dim
        ):
            raise ValueError(f"shape {tuple(embed.shape)} is not [1, 1..{self.max_length}, {self.text_dim}]")
        if embed.dtype != self.dtype:
            raise ValueError(f"dtype {embed.dtype} is not {self.dtype}")
        tokens = int(meta.get("tokens", "-1"))
        if tokens < n:
            raise ValueError(f"token count {tokens} is below its {n} rows")
        return embed, tokens

    def put(self, text: str, embed: torch.Tensor, tokens: int) -> None:
        """Store ``embed`` ``[1, n, text_dim]`` for ``text``, ``tokens`` being the prompt's token count before
        truncation. A write that fails is logged (once per cache) and otherwise ignored."""
        from safetensors.torch import save_file

        path = self.path(text)
        meta = {
            "format": FORMAT,
            "key": self.key(text),
            "tokens": str(int(tokens)),
            "dtype": str(embed.dtype),
            "shape": json.dumps(list(embed.shape)),
        }
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_output(path) as tmp:
                save_file({_TENSOR: embed.detach().to("cpu").contiguous()}, str(tmp), metadata=meta)
        except OSError as err:
            if not self._write_failed:
                log.warning(
                    "cannot write the prompt-embedding cache in %s (%s); going on without it",
                    self.folder,
                    err,
                )
            self._write_failed = True
