"""Causal Wan transformer: diffusers' ``WanTransformer3DModel`` driven block by block with a KV cache.

The Wan blocks, embedders and output head are diffusers' own modules, used as they are. What this
file adds is what LongLive changes (NVlabs/LongLive v1.0 ``wan/modules/causal_model.py``):

* a self-attention processor that applies RoPE to the queries at the *absolute* latent-frame index
  (or, with a relative-RoPE cache, at the ranks the cache gives the pass's frames: official
  ``causal_model_infinity.py``) and hands the keys (before RoPE), the values and the pass's RoPE tables
  to an attention cache (:class:`~longlive_cli.models.kv_cache.AttentionCache`), which stores what it
  keeps and returns the keys/values to attend to. LongLive's :class:`~longlive_cli.models.kv_cache.KVCache`
  stores keys after RoPE and returns everything it holds (frame sink + local window; no mask, so attention
  inside the block is bidirectional); :class:`~longlive_cli.models.kv_cache.RelativeKVCache` stores them
  unrotated and rotates all of them by rank in every pass; Rolling Forcing's cache
  (:mod:`longlive_cli.samplers.rolling_forcing`) keeps its sink without RoPE and places it anew;
* a cross-attention processor that reads text keys/values computed once per prompt;
* per-frame timesteps (``[B, F]``), with the sinusoidal timestep embedding computed in float64 as
  the official ``sinusoidal_embedding_1d`` does.

Shapes: latents are ``[B, F, C, h, w]`` (batch, latent frames, 16 channels, height/8, width/8).
Patchify (1, 2, 2) gives ``(h/2)*(w/2)`` tokens per latent frame (1560 at 832x480).

Fast path (:class:`~longlive_cli.runtime.RuntimeOptions`, applied with :meth:`CausalWanTransformer.
configure`): fused self-attention QKV, RoPE tables built once per resolution and block, a static-shape
KV cache, ``torch.compile`` of the block stack and a chosen attention backend. Each leaves the output
equal to the plain path's up to rounding (tests compare them on the CPU).

The custom processors receive their per-pass inputs through the arguments that
``WanTransformerBlock.forward`` already passes to its attention modules: the ``rotary_emb``
argument of ``attn1`` carries a :class:`SelfAttentionInputs`, the ``encoder_hidden_states``
argument of ``attn2`` carries a :class:`PromptContext`. The block itself is not re-written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from diffusers import WanTransformer3DModel
from diffusers.models.attention_dispatch import dispatch_attention_fn

from ..geometry import WAN21
from ..runtime import MASKLESS_BACKENDS, RuntimeOptions, fall_back
from .kv_cache import AttentionCache, KVCache, RelativeKVCache
from .rope import apply_rope


@dataclass
class PromptContext:
    """One prompt's text conditioning, projected for cross-attention.

    ``context``: ``[B, 512, dim]``, the UMT5 embedding after the transformer's text projection.
    ``kv``: per layer, the cross-attention keys and values (``[B, 512, heads, head_dim]`` each),
    computed once per prompt by :meth:`CausalWanTransformer.encode_prompt` (official
    ``crossattn_cache``).
    """

    context: torch.Tensor
    kv: dict[int, tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class SelfAttentionInputs:
    """Per-pass inputs of the self-attention processors.

    ``cos``/``sin``: RoPE tables ``[1, S, 1, head_dim]`` for the pass's ``S`` query tokens.
    ``cache``/``write``: the attention cache and its plan for this pass (what ``cache.assign``
    returned: for a :class:`KVCache`, where this pass writes) on the cached path, or ``None``.
    ``attn_mask``: boolean ``[S, S]`` (True = may attend) for the uncached reference path.
    """

    cos: torch.Tensor
    sin: torch.Tensor
    cache: AttentionCache | None = None
    write: Any = None
    attn_mask: torch.Tensor | None = None


def _project_qkv(attn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if getattr(attn, "fused_projections", False):
        return attn.to_qkv(x).chunk(3, dim=-1)
    return attn.to_q(x), attn.to_k(x), attn.to_v(x)


class CachedSelfAttnProcessor:
    """Self-attention of one layer: queries rotated by the pass's RoPE tables (absolute frames, or the
    ranks a relative-RoPE cache gives); with a cache, the cache stores this pass's keys/values and gives
    the keys/values to attend to (:meth:`AttentionCache.attend`).

    ``backend``: diffusers attention backend name (None: its default), set by ``configure``.
    """

    def __init__(self, layer: int) -> None:
        self.layer = layer
        self.backend: str | None = None

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        inputs: SelfAttentionInputs = rotary_emb
        q, k, v = _project_qkv(attn, hidden_states)
        q = attn.norm_q(q).unflatten(2, (attn.heads, -1))
        k = attn.norm_k(k).unflatten(2, (attn.heads, -1))
        v = v.unflatten(2, (attn.heads, -1))
        q = apply_rope(q, inputs.cos, inputs.sin)
        mask = inputs.attn_mask
        if inputs.cache is None:
            k = apply_rope(k, inputs.cos, inputs.sin)
        else:  # the cache gets the keys before RoPE: it decides what to store and what to attend to
            k, v, mask = inputs.cache.attend(self.layer, inputs.write, k, v, inputs.cos, inputs.sin)
        backend = None if mask is not None and self.backend in MASKLESS_BACKENDS else self.backend
        out = dispatch_attention_fn(q, k, v, attn_mask=mask, backend=backend)
        out = out.flatten(2, 3).type_as(q)
        return attn.to_out[1](attn.to_out[0](out))


class CachedCrossAttnProcessor:
    """Cross-attention of one layer to all 512 text positions (no padding mask, as official).

    ``backend``: diffusers attention backend name (None: its default), set by ``configure``.
    """

    def __init__(self, layer: int) -> None:
        self.layer = layer
        self.backend: str | None = None

    @staticmethod
    def project_kv(attn, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Text keys/values ``[B, 512, heads, head_dim]`` of one layer."""
        k = attn.norm_k(attn.to_k(context)).unflatten(2, (attn.heads, -1))
        return k, attn.to_v(context).unflatten(2, (attn.heads, -1))

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        prompt: PromptContext = encoder_hidden_states
        q = attn.norm_q(attn.to_q(hidden_states)).unflatten(2, (attn.heads, -1))
        k, v = prompt.kv[self.layer]
        out = dispatch_attention_fn(q, k, v, backend=self.backend).flatten(2, 3).type_as(q)
        return attn.to_out[1](attn.to_out[0](out))


def sinusoidal_embedding(timesteps: torch.Tensor, dim: int) -> torch.Tensor:
    """Wan's sinusoidal timestep embedding in float64: ``[N] -> [N, dim]`` as ``[cos | sin]``.

    Source: Wan2.1 ``wan/modules/model.py`` ``sinusoidal_embedding_1d`` (float64); diffusers'
    float32 ``Timesteps`` differs by ~5e-6 per pass, which the official code does not have.
    """
    half = dim // 2
    pos = timesteps.to(torch.float64).flatten()
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=pos.device).div(half))
    angles = torch.outer(pos, freqs)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


class CausalWanTransformer(torch.nn.Module):
    """A ``WanTransformer3DModel`` run causally, block by block, with per-frame timesteps.

    Args:
        wan: the diffusers transformer; its attention processors are replaced by the cached ones.
        text_len: text positions cross-attended to (Wan: 512); shorter prompt embeddings are zero-padded.

    The model predicts the flow ``v`` (noise minus x0) for the frames it is given.
    """

    def __init__(self, wan: WanTransformer3DModel, *, text_len: int = WAN21.text_len) -> None:
        super().__init__()
        self.wan = wan
        self.text_len = text_len
        for i, block in enumerate(wan.blocks):
            block.attn1.set_processor(CachedSelfAttnProcessor(i))
            block.attn2.set_processor(CachedCrossAttnProcessor(i))
        cfg = wan.config
        self.num_layers = cfg.num_layers
        self.heads = cfg.num_attention_heads
        self.head_dim = cfg.attention_head_dim
        self.dim = self.heads * self.head_dim
        self.patch_size = tuple(cfg.patch_size)
        self.max_frames = cfg.rope_max_seq_len
        if self.patch_size[0] != 1:
            raise ValueError(f"causal generation needs a temporal patch size of 1, got {self.patch_size}")
        self.options = RuntimeOptions()
        self._rope_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self._rope_parts_cache: dict[tuple[int, int], tuple] = {}
        self._compiled_blocks: Callable[..., torch.Tensor] | None = None  # torch.compile'd _run_blocks
        self._compiled_frames: int | None = None  # pass size the compiled blocks are used for
        self.fallbacks: list[str] = []  # speed options switched off after failing, with why
        self._compiled_ok = False  # the compiled blocks have run (for tests and benchmarks)

    def configure(self, options: RuntimeOptions, *, frames_per_block: int = 3) -> CausalWanTransformer:
        """Apply the fast-path ``options`` (see :class:`~longlive_cli.runtime.RuntimeOptions`).

        Fusing QKV cannot be undone on this instance; the other switches can be changed by calling
        again. ``frames_per_block``: the pass size (latent frames) that ``torch.compile`` targets.
        Returns ``self``.
        """
        if options.fused_qkv and not self.quantized:
            for block in self.wan.blocks:
                attn = block.attn1
                if not getattr(attn, "fused_projections", False):
                    attn.fuse_projections()
                    # The processor reads only to_qkv now; dropping the separate weights keeps memory flat.
                    del attn.to_q, attn.to_k, attn.to_v
        previous, self.options = self.options, options  # _fall_back reads options.strict
        backend = options.attention_backend
        if backend is not None:
            try:
                self._probe_attention(backend)
            except Exception as err:
                self._fall_back(f"attention {options.attention}", err)
                backend = None
        for block in self.wan.blocks:
            block.attn1.processor.backend = block.attn2.processor.backend = backend
        self._rope_cache.clear()
        self._rope_parts_cache.clear()
        same_compile = (options.compile, options.compile_mode, options.compile_backend) == (
            previous.compile,
            previous.compile_mode,
            previous.compile_backend,
        )
        if not (same_compile and frames_per_block == self._compiled_frames):  # else keep compiled code
            self._compiled_blocks, self._compiled_frames, self._compiled_ok = None, None, False
            if options.compile:
                self._compiled_blocks = torch.compile(
                    self._run_blocks,
                    mode=options.compile_mode,
                    backend=options.compile_backend,
                    dynamic=False,
                    fullgraph=True,
                )
                self._compiled_frames = frames_per_block
        return self

    def _probe_attention(self, backend: str) -> None:
        """One call of ``backend`` before the video starts: at a pass's real size on CUDA (3 latent frames
        of queries against 12 of keys at the native resolution), small on the CPU."""
        tokens = WAN21.tokens_per_frame(*WAN21.native_resolution) if self.device.type == "cuda" else 8
        fpb = WAN21.frames_per_block
        q = torch.zeros(1, fpb * tokens, self.heads, self.head_dim, device=self.device, dtype=self.dtype)
        k = torch.zeros(1, 4 * fpb * tokens, self.heads, self.head_dim, device=self.device, dtype=self.dtype)
        dispatch_attention_fn(q, k, k, backend=backend)

    @property
    def quantized(self) -> bool:
        """True when the block weights are torchao tensors (``longlive quantize`` / ``--int8``)."""
        weight = self.wan.blocks[0].ffn.net[0].proj.weight
        return type(weight) not in (torch.Tensor, torch.nn.Parameter)

    @property
    def dtype(self) -> torch.dtype:
        return self.wan.patch_embedding.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.wan.patch_embedding.weight.device

    def tokens_per_frame(self, height: int, width: int) -> int:
        """Tokens per latent frame for a latent of ``height`` x ``width`` (latent pixels)."""
        _, ph, pw = self.patch_size
        return (height // ph) * (width // pw)

    def new_cache(
        self, height: int, width: int, *, capacity_frames: int, sink_frames: int, rope: str = "absolute"
    ) -> KVCache:
        """An empty KV cache sized for this model and a ``height`` x ``width`` latent: LongLive's
        :class:`KVCache` (``rope="absolute"``: keys rotated at their latent frame when stored) or a
        :class:`RelativeKVCache` (``"relative"``: keys stored unrotated, rotated at their rank in every pass).

        Raises:
            ValueError: an unknown ``rope``.
        """
        if rope not in ("absolute", "relative"):
            raise ValueError(f"rope must be 'absolute' or 'relative', got {rope!r}")
        sizes = {
            "num_layers": self.num_layers,
            "batch_size": 1,
            "tokens_per_frame": self.tokens_per_frame(height, width),
            "heads": self.heads,
            "head_dim": self.head_dim,
            "capacity_frames": capacity_frames,
            "sink_frames": sink_frames,
            "dtype": self.dtype,
            "device": self.device,
            "static": self.options.static_cache,
        }
        if rope == "relative":
            _, ph, pw = self.patch_size
            return RelativeKVCache(
                rope_at=functools.partial(self.rope_at, hp=height // ph, wp=width // pw), **sizes
            )
        return KVCache(**sizes)

    def encode_prompt(self, text_embeds: torch.Tensor) -> PromptContext:
        """Project UMT5 embeddings ``[B, L, text_dim]`` (L <= 512 token rows) into a :class:`PromptContext`
        whose cross-attention keys/values are computed for every layer now (once per prompt).

        Rows ``L..511`` are taken as zeros: Wan zero-pads every prompt's UMT5 output to 512 rows
        (:mod:`longlive_cli.text`) and cross-attends to all 512, padded rows included (the text
        projection has biases, so they are not zero after it). An embedding trimmed to its tokens
        (:func:`~longlive_cli.text.encode_prompts`) therefore gives exactly the keys/values of the
        padded one.

        Raises:
            ValueError: ``L`` > 512.
        """
        rows = text_embeds.shape[1]
        if rows > self.text_len:
            raise ValueError(
                f"a prompt embedding has {rows} token rows; the transformer reads {self.text_len}"
            )
        text = text_embeds.to(device=self.device, dtype=self.dtype)
        if rows < self.text_len:
            text = torch.nn.functional.pad(text, (0, 0, 0, self.text_len - rows))
        context = self.wan.condition_embedder.text_embedder(text)
        kv = {i: CachedCrossAttnProcessor.project_kv(b.attn2, context) for i, b in enumerate(self.wan.blocks)}
        return PromptContext(context=context, kv=kv)

    def rope(self, start_frame: int, num_frames: int, hp: int, wp: int) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE cos/sin ``[1, F*hp*wp, 1, head_dim]`` for frames starting at absolute ``start_frame``.

        With ``options.rope_cache`` the tables of the last few ``(start_frame, num_frames)`` are kept
        (a block's five passes share one) and the height/width part is built once per resolution;
        the values are identical either way.

        Raises:
            ValueError: past the model's positional table (``rope_max_seq_len`` latent frames).
        """
        if not self.options.rope_cache:
            return self._build_rope(start_frame, num_frames, hp, wp)
        key = (start_frame, num_frames, hp, wp)
        if key not in self._rope_cache:
            if len(self._rope_cache) >= 8:  # a block's passes and a re-cache need at most two
                self._rope_cache.pop(next(iter(self._rope_cache)))
            self._rope_cache[key] = self._build_rope(start_frame, num_frames, hp, wp)
        return self._rope_cache[key]

    def rope_at(self, positions: tuple[int, ...], hp: int, wp: int) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE cos/sin ``[1, len(positions)*hp*wp, 1, head_dim]`` for frames at the temporal ``positions``
        (any integers, in the order given; relative RoPE places frames at their ranks).

        Positions inside the model's table (``0 <= p < rope_max_seq_len``) read it, so they give exactly the
        values :meth:`rope` gives; others are computed with the table's formula (angle ``p / 10000**(2i/d_t)``
        in float64, rounded to float32 as the table is: Wan's ``rope_params``, diffusers'
        ``get_1d_rotary_pos_embed``), so there is no length limit. Cached by positions with
        ``options.rope_cache`` (relative RoPE repeats a few patterns).
        """
        key = (positions, hp, wp)
        if self.options.rope_cache and key in self._rope_cache:
            return self._rope_cache[key]
        n = len(positions)
        tables = []
        for t_rows, (_, hw) in zip(self._time_rows(positions), self._rope_parts(hp, wp), strict=True):
            t_part = t_rows.view(n, 1, 1, -1).expand(n, hp, wp, -1)
            tables.append(
                torch.cat([t_part, hw.expand(n, hp, wp, -1)], dim=-1).reshape(1, n * hp * wp, 1, -1)
            )
        out = (tables[0], tables[1])
        if self.options.rope_cache:
            if len(self._rope_cache) >= 16:
                self._rope_cache.pop(next(iter(self._rope_cache)))
            self._rope_cache[key] = out
        return out

    def _time_rows(self, positions: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """The temporal part of the RoPE cos and sin tables at ``positions``: ``[len, t_dim]`` each, in the
        dtype of :meth:`_rope_parts` (table rows where the table has them, the formula elsewhere)."""
        rope = self.wan.rope
        tables = [full[:, : rope.t_dim] for full in (rope.freqs_cos, rope.freqs_sin)]
        size, device = tables[0].shape[0], tables[0].device
        dtype = torch.float64 if self.dtype == torch.float32 else torch.float32
        inside = [0 <= p < size for p in positions]
        index = torch.tensor([min(max(p, 0), size - 1) for p in positions], device=device)
        rows = [table.index_select(0, index) for table in tables]
        if not all(inside):
            steps = torch.arange(0, rope.t_dim, 2, dtype=torch.float64, device=device)
            inv = 1.0 / (10000.0 ** (steps / rope.t_dim))
            pos = torch.tensor(positions, dtype=torch.float64, device=device)
            angles = torch.outer(pos, inv).repeat_interleave(2, dim=1)
            mask = torch.tensor(inside, device=device).view(-1, 1)
            # Rounded to the table's dtype as the table is, so a position has one value in or out of it.
            formula = [angles.cos().to(tables[0].dtype), angles.sin().to(tables[0].dtype)]
            rows = [torch.where(mask, r, f) for r, f in zip(rows, formula, strict=True)]
        return rows[0].to(dtype), rows[1].to(dtype)

    def _rope_parts(self, hp: int, wp: int) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        """Per (cos, sin): time table ``[max_frames, dt]`` and height/width table ``[hp, wp, dh+dw]``."""
        if self.options.rope_cache and (hp, wp) in self._rope_parts_cache:
            return self._rope_parts_cache[hp, wp]
        rope = self.wan.rope
        sizes = [rope.t_dim, rope.h_dim, rope.w_dim]
        dtype = torch.float64 if self.dtype == torch.float32 else torch.float32
        built = []
        for full in (rope.freqs_cos, rope.freqs_sin):
            t, h, w = full.to(dtype).split(sizes, dim=1)
            hw = torch.cat(
                [h[:hp].view(hp, 1, -1).expand(hp, wp, -1), w[:wp].view(1, wp, -1).expand(hp, wp, -1)], dim=-1
            )
            built.append((t, hw))
        parts = tuple(built)
        if self.options.rope_cache:
            self._rope_parts_cache[hp, wp] = parts
        return parts

    def _build_rope(self, start_frame: int, num_frames: int, hp: int, wp: int):
        if start_frame < 0 or start_frame + num_frames > self.max_frames:
            raise ValueError(
                f"latent frames {start_frame}..{start_frame + num_frames - 1} are outside the model's "
                f"positional table of {self.max_frames} latent frames"
            )
        n = num_frames
        tables = []
        for t, hw in self._rope_parts(hp, wp):
            t_part = t[start_frame : start_frame + n].view(n, 1, 1, -1).expand(n, hp, wp, -1)
            tables.append(
                torch.cat([t_part, hw.expand(n, hp, wp, -1)], dim=-1).reshape(1, n * hp * wp, 1, -1)
            )
        return tables[0], tables[1]

    def _run_blocks(self, x, prompt: PromptContext, block_temb, inputs: SelfAttentionInputs) -> torch.Tensor:
        """The transformer blocks over tokens ``x`` ``[B, S, dim]`` (the part ``torch.compile`` sees)."""
        for block in self.wan.blocks:
            x = block(x, prompt, block_temb, inputs)
        return x

    def _run_compiled(self, x, prompt, block_temb, inputs) -> torch.Tensor:
        assert self._compiled_blocks is not None
        try:
            out = self._compiled_blocks(x, prompt, block_temb, inputs)
        except Exception as err:  # a missing compiler, an unsupported op, a recompile limit: at any call
            self._fall_back("compile", err, "running the transformer eagerly")
            self._compiled_blocks = None
            return self._run_blocks(x, prompt, block_temb, inputs)
        self._compiled_ok = True
        return out

    def _fall_back(self, option: str, err: Exception, instead: str = "switched off") -> None:
        """:func:`~longlive_cli.runtime.fall_back` into :attr:`fallbacks`, strict as :attr:`options` says."""
        fall_back(option, err, strict=self.options.strict, record=self.fallbacks, instead=instead)

    def forward(
        self,
        latents: torch.Tensor,
        timesteps: torch.Tensor,
        prompt: PromptContext,
        *,
        start_frame: int,
        cache: AttentionCache | None = None,
        attn_mask: torch.Tensor | None = None,
        frame_positions: tuple[int, ...] | None = None,
        rope_offset: int = 0,
    ) -> torch.Tensor:
        """Flow prediction for ``F`` latent frames starting at absolute latent frame ``start_frame``.

        Args:
            latents: ``[B, F, C, h, w]`` noisy (or clean, at timestep 0) latents.
            timesteps: ``[B]`` (one per video) or ``[B, F]`` (per frame) timesteps on the 0..1000
                scale, float.
            prompt: text conditioning from :meth:`encode_prompt`.
            start_frame: absolute latent index of the first frame (RoPE position, cache slots).
            cache: cached path: the cache stores these frames' keys/values and gives the keys/values
                to attend to (a :class:`KVCache`: write them, attend to the whole cache).
            attn_mask: uncached path: boolean ``[S, S]`` mask over the ``F*(h/2)*(w/2)`` tokens.
            frame_positions: uncached path: the RoPE frame index of each of the ``F`` frames, in
                place of ``start_frame, start_frame + 1, ...`` (reference computations that place a
                frame at another position than its neighbours'; :mod:`longlive_cli.reference`). Any
                integers: positions outside the model's table are computed (:meth:`rope_at`).
            rope_offset: latent frames added to the temporal RoPE index of the pass's queries and keys (the
                keys are cached with it), not to the cache slots: LongLive 2.0's per-shot offset
                (``rope_temporal_offset = shot_index * 8``, NVlabs/LongLive ``main``
                ``pipeline/causal_diffusion_inference.py:545-551``, ``utils/position_embedding_utils.py``
                ``compute_temporal_freqs``: no table limit once offset). Absolute RoPE only.

        With a cache whose ``relative_rope`` is True (:class:`~longlive_cli.models.kv_cache.RelativeKVCache`)
        the queries are placed at the positions its plan gives (``query_positions``: the ranks of the pass's
        frames), not at ``start_frame``, so ``start_frame`` may lie past the table.

        Returns:
            ``[B, F, C, h, w]`` flow prediction in the model dtype.
        """
        wan = self.wan
        b, f, _, h, w = latents.shape
        _, ph, pw = self.patch_size
        hp, wp = h // ph, w // pw
        x = wan.patch_embedding(latents.to(self.dtype).transpose(1, 2))
        x = x.flatten(2).transpose(1, 2).contiguous()  # [B, S, dim]

        emb = wan.condition_embedder
        per_frame = timesteps.ndim == 2
        sin_emb = sinusoidal_embedding(timesteps, emb.timesteps_proj.num_channels)
        temb = emb.time_embedder(sin_emb.to(emb.time_embedder.linear_1.weight.dtype)).type_as(x)
        tproj = emb.time_proj(emb.act_fn(temb)).unflatten(1, (6, self.dim))  # [N, 6, dim]
        if per_frame:
            temb = temb.unflatten(0, (b, f))  # [B, F, dim]
            block_temb = tproj.unflatten(0, (b, f)).repeat_interleave(hp * wp, dim=1)  # [B, S, 6, dim]
        else:
            temb = temb.unsqueeze(1).expand(b, f, -1)  # one timestep per video: the cheap path
            block_temb = tproj  # [B, 6, dim]

        if frame_positions is not None:
            if cache is not None or len(frame_positions) != f:
                raise ValueError("frame_positions needs the uncached path and one position per frame")
            cos, sin = self.rope_at(tuple(frame_positions), hp, wp)
        elif rope_offset:
            cos, sin = self.rope_at(
                tuple(range(start_frame + rope_offset, start_frame + rope_offset + f)), hp, wp
            )
        elif not getattr(cache, "relative_rope", False):
            cos, sin = self.rope(start_frame, f, hp, wp)  # before assign: an error leaves the cache as it was
        write = cache.assign(start_frame, f) if cache is not None else None
        if write is not None and getattr(cache, "relative_rope", False):  # queries at their frames' ranks
            cos, sin = self.rope_at(tuple(write.query_positions), hp, wp)
        inputs = SelfAttentionInputs(cos.to(x.device), sin.to(x.device), cache, write, attn_mask)
        # The compiled blocks are traced for LongLive's (static) KVCache; other caches (relative RoPE
        # included) run eagerly.
        compiled = self._compiled_blocks is not None and type(cache) is KVCache
        if compiled and f == self._compiled_frames:
            x = self._run_compiled(x, prompt, block_temb, inputs)
        else:
            x = self._run_blocks(x, prompt, block_temb, inputs)

        shift, scale = (wan.scale_shift_table.unsqueeze(0) + temb.unsqueeze(2)).chunk(2, dim=2)
        x = wan.norm_out(x.float()).unflatten(1, (f, hp * wp))
        x = (x * (1 + scale) + shift).flatten(1, 2).type_as(temb)
        x = wan.proj_out(x)  # [B, S, p_t*p_h*p_w*C]
        x = x.reshape(b, f, hp, wp, ph, pw, -1).permute(0, 1, 6, 2, 4, 3, 5)
        return x.reshape(b, f, -1, h, w)
