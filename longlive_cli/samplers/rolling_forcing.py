"""Rolling Forcing's window sampler: S blocks at S noise levels denoised together, one pass per window.

Source: TencentARC/RollingForcing a1477d0, ``pipeline/rolling_forcing_inference.py``
(``inference_rolling_forcing``), ``wan/modules/causal_model.py`` (``CausalWanSelfAttention.forward``:
anchor block, working cache, clean-cache update) and ``utils/wan_wrapper.py`` (flow -> x0 in float64).
docs/design.md "Rolling Forcing reference semantics" states the rules; in short, with S denoising steps and
``nb`` blocks of 3 latent frames:

* **Windows** ``w = 0 .. nb+S-2`` hold blocks ``max(0, w-S+1) .. min(nb-1, w)``; block ``b`` is at step
  ``k = w-b`` (the oldest block the cleanest). One transformer pass per window over all its frames,
  per-frame timesteps, bidirectional inside the window, RoPE at absolute frames. Block ``b`` is final
  after window ``b+S-1`` and is yielded then. ``nb >= S`` is required.
* **Re-noise** after the pass, for each block with ``k < S-1`` in block order: one draw of the whole
  window's shape, of which the block's frames are used. **Noise stream**: one CPU generator seeded with
  ``seed``, ``[1, L, 16, h, w]`` first (drawn here block by block, see
  :class:`~longlive_cli.samplers.base.NoiseStream`), then the re-noise draws.
* **Clean pass** of the window's first block once it is final: its x0 at t = 0 writes that block's
  keys/values into :class:`RollingCache` (block 0: the *sink*, stored without RoPE; later blocks: a ring of
  the 21 most recent frames), attending to the cached frames ``[max(0, f+3-21), f+3)``.
* **Denoise pass** of a window from frame ``f > 0`` with ``q`` frames attends to the sink rotated to frames
  ``f-W-3 .. f-W-1``, the ``W = min(21-q-3, f-3)`` frames before ``f``, and the window itself.

Two passes the official loop runs are left out because nothing reads what they write: the clean passes
of windows ``0 .. S-2`` (block 0 is not final yet; window ``S-1`` rewrites the sink before any pass reads
it) and the clean pass of the last block.

**Prompt switches** (this project's rule; the official code is single-prompt). ``segment_of_block`` gives
each block's prompt, and a window runs under the prompt of its *newest* block, so a switch at block ``b``
takes effect at window ``b``, the window where ``b`` enters; the blocks still in flight (``b-S+1 .. b-1``)
finish under the new prompt; blocks finished before (``<= b-S``) are unchanged. Before that window's pass,
the cache is re-cached for the new prompt, as LongLive's ``recache`` does with ``global_sink``: one pass at
t = 0 under the new prompt over the clean x0 of the ``R = min(18, f-3)`` cached frames before the window
(``f`` its first frame; the only cached frames any later pass reads), bidirectional among them and
attending to the sink placed just before them (frames ``f-R-3 .. f-R-1``), rewrites their keys/values.
The sink keeps its keys/values (it is the video's anchor; LongLive's default ``global_sink`` keeps it too).
At most 21 frames are attended, as in every other pass.

**Passes** (3 latent frames per block, ``nb`` blocks): ramp-up windows ``0 .. S-1``: one pass each over
``3(w+1)`` frames, plus the sink's clean pass after window ``S-1``; steady state: 2 passes per block (the
window over ``3S`` frames, the clean pass over 3); drain windows ``nb .. nb+S-2``: one pass each over
``3(nb+S-1-w)`` frames plus a clean pass, except after the last. In all ``nb+S-1`` window passes and
``nb-1`` clean passes (the official loop: ``2(nb+S-1)``). A switch at block ``b > S`` costs one pass over
``R`` frames (<= 18) and the new prompt's cross-attention keys/values; a switch at ``b <= S`` costs no
pass (nothing re-cachable is held yet; the sink keeps its keys/values).

Memory is flat in video length: the cache (sink + 21 frames per layer), the blocks in flight (at most
``S``) and the x0 of the last 18 frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

from ..geometry import WAN21, Geometry
from ..models.rope import apply_rope
from ..models.spec import SamplerConfig
from ..runtime import StageTimes, stage
from ..schedule import PromptSchedule
from .base import NoiseStream, SampledBlock, flow_schedule

if TYPE_CHECKING:
    from ..models.transformer import CausalWanTransformer

#: Latent frames a pass attends to at most, the sink's included (official ``max_attention_size``).
ATTENTION_FRAMES = 21

#: Rolling Forcing's released schedule (``configs/rolling_forcing_dmd.yaml``): S = 5 steps,
#: t = 1000, 952.381, 882.353, 769.231, 555.556. ``local_attn_size``/``sink_size``/``global_sink`` are
#: LongLive's and not used here (the sink is one block; see :data:`ATTENTION_FRAMES`).
ROLLING_FORCING = SamplerConfig(name="rolling-forcing", denoising_steps=(1000, 800, 600, 400, 200))


@dataclass(frozen=True)
class _Plan:
    """What one pass reads and writes, in cache tokens (built once per pass, used by every layer)."""

    sink_rope: tuple[torch.Tensor, torch.Tensor] | None  # cos/sin placing the sink, None: no sink keys
    reads: tuple[tuple[int, int], ...]  # ring token ranges attended to, in frame order
    writes: tuple[tuple[int, int, int], ...]  # (ring token start, pass token start, tokens) stored


@dataclass(frozen=True)
class RollingPass:
    """One transformer pass's view of a :class:`RollingCache`; an
    :class:`~longlive_cli.models.kv_cache.AttentionCache` for ``CausalWanTransformer.forward``.

    The pass attends, in this order, to the sink rotated to frames ``sink_at .. sink_at+2`` (None: no
    sink), the ring's clean keys/values of frames ``ring`` (at their own frames), then its own
    ``num_frames`` frames from ``start``. ``kind``: ``"denoise"`` stores nothing; ``"clean"`` stores the
    pass's keys (block 0: without RoPE, as the sink; later blocks: after RoPE, in the ring);
    ``"recache"`` rewrites ring frames.
    """

    cache: RollingCache
    kind: Literal["denoise", "clean", "recache"]
    start: int
    num_frames: int
    sink_at: int | None
    ring: tuple[int, ...]

    def key_frames(self) -> tuple[tuple[str, int, int], ...]:
        """``(source, frame, RoPE frame)`` of every key frame in attention order; source is
        ``"sink"``, ``"ring"`` or ``"own"``."""
        fpb = self.cache.frames_per_block
        sink = () if self.sink_at is None else tuple(("sink", i, self.sink_at + i) for i in range(fpb))
        own = tuple(("own", f, f) for f in range(self.start, self.start + self.num_frames))
        return sink + tuple(("ring", f, f) for f in self.ring) + own

    def assign(self, start_frame: int, num_frames: int) -> _Plan:
        if (start_frame, num_frames) != (self.start, self.num_frames):
            raise ValueError(
                f"pass planned for {self.num_frames} frames from {self.start}, "
                f"run on {num_frames} from {start_frame}"
            )
        return self.cache.plan_pass(self)

    def attend(self, layer: int, plan: _Plan, k, v, cos, sin):
        return self.cache.attend_pass(self, layer, plan, k, v, cos, sin)


class RollingCache:
    """Rolling Forcing's self-attention cache: a sink and a ring of the most recent clean frames.

    Per layer: the sink (block 0's clean keys *without* RoPE, and its values), ``[1, 3*tpf, heads,
    head_dim]``; a ring of ``ATTENTION_FRAMES`` (21) frames of clean keys (after RoPE at their own frames)
    and values, frame ``g`` in slot ``(g - 3) % 21``, so a new block overwrites the oldest; and the clean
    x0 of the last ``21 - 3`` frames, for a re-cache. Nothing grows with the video.
    """

    def __init__(self, model: CausalWanTransformer, height: int, width: int, *, frames_per_block: int = 3):
        self.frames_per_block = fpb = frames_per_block
        self.span = ATTENTION_FRAMES
        self.tokens_per_frame = model.tokens_per_frame(height, width)
        self._grid = (height // model.patch_size[1], width // model.patch_size[2])
        self._rope = model.rope
        self._device = model.device

        def buffer(frames: int) -> torch.Tensor:
            shape = (model.num_layers, 1, frames * self.tokens_per_frame, model.heads, model.head_dim)
            return torch.zeros(shape, dtype=model.dtype, device=model.device)

        self.sink_k, self.sink_v = buffer(fpb), buffer(fpb)
        self.ring_k, self.ring_v = buffer(self.span), buffer(self.span)
        self.slot_frames: list[int] = [-1] * self.span
        self.recent: torch.Tensor | None = None  # x0 of the last span - fpb cached frames after the sink

    def denoise(self, start: int, num_frames: int) -> RollingPass | None:
        """The pass of a window from frame ``start`` over ``num_frames`` frames (None: anchored at
        block 0, it uses no cache)."""
        if start == 0:
            return None
        w = max(0, min(self.span - num_frames - self.frames_per_block, start - self.frames_per_block))
        sink_at = start - w - self.frames_per_block
        return RollingPass(self, "denoise", start, num_frames, sink_at, tuple(range(start - w, start)))

    def clean(self, start: int, x0: torch.Tensor) -> RollingPass:
        """The clean pass of the final block at ``start`` (x0 ``[1, 3, 16, h, w]``, kept for a re-cache)."""
        fpb = self.frames_per_block
        if start > 0:
            x0 = x0 if self.recent is None else torch.cat([self.recent, x0], dim=1)
            self.recent = x0[:, -(self.span - fpb) :]
        first = max(0, start + fpb - self.span)  # keys: cached frames [first, start + 3)
        sink_at = 0 if first == 0 and start > 0 else None
        return RollingPass(self, "clean", start, fpb, sink_at, tuple(range(max(first, fpb), start)))

    def recache_pass(self, start: int) -> tuple[torch.Tensor, RollingPass] | None:
        """x0 and pass that re-encode the cached frames a window from ``start`` and later ones read
        (``R = min(18, start-3)`` frames before it; None when there are none)."""
        r = min(self.span - self.frames_per_block, start - self.frames_per_block)
        if r <= 0 or self.recent is None:
            return None
        return self.recent[:, -r:], RollingPass(
            self, "recache", start - r, r, start - r - self.frames_per_block, ()
        )

    def _runs(self, frames: range | tuple[int, ...]) -> list[tuple[int, int, int]]:
        """Consecutive ``frames`` as ``(first slot, index in frames, count)`` runs of ring slots."""
        runs: list[tuple[int, int, int]] = []
        for i, f in enumerate(frames):
            slot = (f - self.frames_per_block) % self.span
            if runs and runs[-1][0] + runs[-1][2] == slot:
                runs[-1] = (runs[-1][0], runs[-1][1], runs[-1][2] + 1)
            else:
                runs.append((slot, i, 1))
        return runs

    def plan_pass(self, p: RollingPass) -> _Plan:
        """Book the ring slots ``p`` writes and check that the frames it reads are held."""
        own = range(p.start, p.start + p.num_frames)
        if p.kind != "denoise" and p.start > 0:
            for f in own:
                self.slot_frames[(f - self.frames_per_block) % self.span] = f
        if any(self.slot_frames[(f - self.frames_per_block) % self.span] != f for f in p.ring):
            raise RuntimeError(f"the rolling cache does not hold frames {p.ring}")
        tpf = self.tokens_per_frame
        reads = tuple((s * tpf, (s + n) * tpf) for s, _, n in self._runs(p.ring))
        stored = () if p.kind == "denoise" or p.start == 0 else self._runs(own)
        writes = tuple((s * tpf, i * tpf, n * tpf) for s, i, n in stored)
        sink_rope = None
        if p.sink_at is not None:
            cos, sin = self._rope(p.sink_at, self.frames_per_block, *self._grid)
            sink_rope = (cos.to(self._device), sin.to(self._device))
        return _Plan(sink_rope, reads, writes)

    def attend_pass(self, p: RollingPass, layer: int, plan: _Plan, k, v, cos, sin):
        """``AttentionCache.attend`` (:mod:`longlive_cli.models.kv_cache`) of pass ``p``."""
        if p.kind == "clean" and p.start == 0:  # block 0 becomes the sink, stored before RoPE
            self.sink_k[layer].copy_(k)
            self.sink_v[layer].copy_(v)
        k = apply_rope(k, cos, sin)
        for ring, own, n in plan.writes:
            self.ring_k[layer, :, ring : ring + n] = k[:, own : own + n]
            self.ring_v[layer, :, ring : ring + n] = v[:, own : own + n]
        keys, values = [], []
        if plan.sink_rope is not None:
            keys.append(apply_rope(self.sink_k[layer], *plan.sink_rope))
            values.append(self.sink_v[layer])
        for lo, hi in plan.reads:
            keys.append(self.ring_k[layer, :, lo:hi])
            values.append(self.ring_v[layer, :, lo:hi])
        if not keys:
            return k, v, None
        return torch.cat([*keys, k], dim=1), torch.cat([*values, v], dim=1), None


def _window_noise(
    noise: NoiseStream, new_block: bool, renoised: list[int], frames: int, model: CausalWanTransformer
) -> list[torch.Tensor]:
    """The window's draws in stream order: the entering block's initial noise, then one window-shaped
    draw per re-noised block (``renoised``: its index in the window), of which its 3 frames are kept.
    ``[1, 3, 16, h, w]`` each, in the model's dtype, moved in one host-to-device copy (pinned on CUDA)."""
    fpb = noise.block_shape[1]
    parts = [noise.initial()] if new_block else []
    for i in renoised:
        parts.append(noise.step((frames, *noise.block_shape[2:]))[i * fpb : (i + 1) * fpb].unsqueeze(0))
    if not parts:
        return []
    host = torch.stack(parts)
    if model.device.type == "cuda":
        host = host.pin_memory()
    return list(host.to(model.device, non_blocking=True).to(model.dtype).unbind(0))


def sample_rolling(
    model: CausalWanTransformer,
    schedule: PromptSchedule,
    *,
    latent_height: int,
    latent_width: int,
    seed: int,
    sampler_config: SamplerConfig = ROLLING_FORCING,
    geometry: Geometry = WAN21,
    times: StageTimes | None = None,
) -> Iterator[SampledBlock]:
    """Generate a video with Rolling Forcing, yielding each block's x0 ``[1, 3, 16, h, w]`` as soon as it is
    final.

    Arguments as :func:`~longlive_cli.samplers.longlive.sample_longlive`; ``sampler_config.denoising_steps``
    gives the S steps (the window is S blocks). The schedule is asked for block ``b`` when ``b`` enters its
    first window. A yielded block's ``segment`` is its own and ``switched`` marks the first block of a
    segment; the switch took effect S-1 windows before it is yielded (see the module docstring). ``times``
    receives ``prompt``, ``denoise``, ``recache`` and ``clean``.

    Raises:
        InputError: fewer blocks than denoising steps (at call time; the message gives the minimum).
    """
    from ..errors import InputError

    steps, nb = len(sampler_config.denoising_steps), schedule.num_blocks
    if nb < steps:
        raise InputError(
            f"Rolling Forcing with {steps} denoising steps needs at least {steps} blocks "
            f"({geometry.frames_per_block * steps} latent frames); this video has {nb}"
        )
    return _windows(model, schedule, (latent_height, latent_width), seed, sampler_config, geometry, times)


@torch.inference_mode()
def _windows(model, schedule, size, seed, sampler_config, geometry, times) -> Iterator[SampledBlock]:
    """The window loop of :func:`sample_rolling` (``size``: latent height, width)."""
    fpb, steps, nb = geometry.frames_per_block, len(sampler_config.denoising_steps), schedule.num_blocks
    timesteps, sigmas = (x.to(model.device) for x in flow_schedule(sampler_config))
    noise = NoiseStream(seed, num_blocks=nb, block_shape=(1, fpb, geometry.latent_channels, *size))
    cache, zero = RollingCache(model, *size, frames_per_block=fpb), torch.zeros(1, device=model.device)
    pending: dict[int, torch.Tensor] = {}  # block -> its input at its next step
    seg: dict[int, int] = {}  # block -> its segment, for the blocks in flight and the last one yielded
    segment, prompt = None, None
    for w in range(nb + steps - 1):
        blocks = range(max(0, w - steps + 1), min(nb - 1, w) + 1)
        start, k = blocks[0] * fpb, torch.tensor([w - b for b in blocks], device=model.device)
        if w < nb:
            seg[w] = schedule.segment_for_block(w)
        if seg[blocks[-1]] != segment:  # the window runs under its newest block's prompt
            segment, prompt = seg[blocks[-1]], None
            with stage(times, "prompt"):
                prompt = model.encode_prompt(schedule.embedding(segment))
            if (job := cache.recache_pass(start)) is not None:  # cached frames to re-encode
                recent, view = job
                with stage(times, "recache"):
                    model(recent, zero, prompt, start_frame=view.start, cache=view)
        renoised = [i for i, b in enumerate(blocks) if w - b < steps - 1]
        drawn = _window_noise(noise, w < nb, renoised, fpb * len(blocks), model)
        if w < nb:
            pending[w] = drawn.pop(0)
        x = torch.cat([pending.pop(b) for b in blocks], dim=1)
        t, sigma = timesteps[k].repeat_interleave(fpb)[None], sigmas[k].repeat_interleave(fpb)
        with stage(times, "denoise"):
            flow = model(x, t, prompt, start_frame=start, cache=cache.denoise(start, x.shape[1]))
            x0 = (x.double() - sigma.double().view(1, -1, 1, 1, 1) * flow.double()).to(model.dtype)
            for i, eps in zip(renoised, drawn, strict=True):
                s = sigmas[w - blocks[i] + 1]
                pending[blocks[i]] = ((1 - s) * x0[:, i * fpb : (i + 1) * fpb] + s * eps).to(model.dtype)
        if w >= steps - 1:  # the window's oldest block is final
            final = x0[:, :fpb].clone()
            if blocks[0] + 1 < nb:  # its clean keys/values, read by later windows
                with stage(times, "clean"):
                    model(final, zero, prompt, start_frame=start, cache=cache.clean(start, final))
            b = blocks[0]
            switched = b > 0 and seg[b] != seg.pop(b - 1)
            yield SampledBlock(b, start, seg[b], switched, final)
