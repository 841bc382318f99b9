"""An independently written reference of the official LongLive 2.0 inference, for the parity tests.

Written from NVlabs/LongLive ``main`` 7860ad9, not from this project's sampler:

* the block loop of ``pipeline/causal_diffusion_inference.py`` ``_inference_inner`` (lines 532-699): per-block
  prompts (the scene-cut prefix marks a shot's first block), the shot's RoPE offset (``shot_index * 8``), the
  I2V overwrite of frame 0 of block 0 before every call and after every step with timestep 0 for it, the clean
  pass, ``_zero_kv_data`` (``shot_clean_recache``) before it and ``_pin_current_chunk`` after it at a cut;
* the KV cache of ``wan_5b/modules/causal_model.py`` ``CausalWanSelfAttention.forward`` (lines 478-690) and
  ``_apply_cache_updates`` (1371-1484), kept as the official token buffer at the granularity of latent frames
  (every index there is a multiple of a frame's tokens): ``local_end`` / ``global_end`` indices, the
  roll-and-insert with the effective sink (global sink, plus the pinned shot sink only while it sits right
  after it), the pin shifted with the roll while floating, the window ``[0, local_end)``;
* the solver of ``wan_5b/utils/fm_solvers_unipc.py``, re-derived as the textbook UniPC-p (B(h) = expm1(-h),
  predict-x0) with float64 scalars and a generic order, the order schedule of ``step`` (lower-order final,
  warm-up) and the fixed ``rho = 1/2`` of the official order-2 predictor.

It shares with the project only the transformer's forward pass (whose numerics against the official model the
1.0 tests pin) and apply_rope; weights come from the official-format file through the hand-written key table
of
``helpers.wan_layout``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from longlive_cli.models.rope import apply_rope

PREFIX = "The scene transitions. "


# ------------------------------------------------------------------------------------------------ solver
def official_grid(steps: int = 4, shift: float = 5.0) -> tuple[list[float], list[float]]:
    """(model timesteps as floats, solver sigmas as the float32 values) of ``set_timesteps(steps, shift)``."""
    sigma_max = float(np.float32(1 - 1 / 1000))  # the training table's first sigma, stored as float32
    s = [sigma_max + k * (0.0 - sigma_max) / steps for k in range(steps)]
    s = [shift * v / (1 + (shift - 1) * v) for v in s]
    return [float(int(v * 1000)) for v in s], [float(np.float32(v)) for v in s] + [0.0]


def _phis(hh: float, order: int) -> list[float]:
    """``b_k = h*phi_{k}(h) * k! / B(h)`` for k = 1..order (B(h) = expm1(hh), hh = -h)."""
    h_phi, b_h, fact, out = math.expm1(hh) / hh - 1, math.expm1(hh), 1, []
    for k in range(1, order + 1):
        out.append(h_phi * fact / b_h)
        fact *= k + 1
        h_phi = h_phi / hh - 1 / fact
    return out


def unipc_block(model_fn, x: torch.Tensor, sigmas: list[float], after_step=None) -> torch.Tensor:
    """Multistep UniPC (order 2, bh2, predict-x0, lower-order final, corrector) over one block: ``model_fn(x,
    i)``
    gives the flow at step ``i``; ``after_step(x)`` may edit each step's output (I2V). Returns the last
    output."""
    lam = [math.log(1 - s) - math.log(s) if s > 0 else math.inf for s in sigmas]
    n, ms, prev_x, prev_order = len(sigmas) - 1, [], None, 0
    for i in range(n):
        m = x - sigmas[i] * model_fn(x, i)
        if i > 0:  # UniC from step i-1 to i with this step's x0
            h = lam[i] - lam[i - 1]
            rk = [(lam[i - 1 - k] - lam[i - 1]) / h for k in range(1, prev_order)]
            b = _phis(-h, prev_order)
            rows = np.array([[r ** (k - 1) for r in [*rk, 1.0]] for k in range(1, prev_order + 1)])
            rho = [0.5] if prev_order == 1 else list(np.linalg.solve(rows, np.array(b)))
            corr = sum(rho[k - 1] * (ms[-1 - k] - ms[-1]) / rk[k - 1] for k in range(1, prev_order))
            a_t = 1 - sigmas[i]
            x = (
                sigmas[i] / sigmas[i - 1] * prev_x
                - a_t * math.expm1(-h) * ms[-1]
                - a_t * math.expm1(-h) * (corr + rho[-1] * (m - ms[-1]))
            )
        ms.append(m)
        order = min(2, n - i, i + 1)
        prev_x, prev_order = x, order
        if sigmas[i + 1] == 0:  # the limit h -> inf of the update: the step's x0
            assert order == 1
            x = m
        else:
            h = lam[i + 1] - lam[i]
            a_t = 1 - sigmas[i + 1]
            x_new = sigmas[i + 1] / sigmas[i] * x - a_t * math.expm1(-h) * m
            if order == 2:
                r1 = (lam[i - 1] - lam[i]) / h
                x_new = x_new - a_t * math.expm1(-h) * 0.5 * (ms[-2] - m) / r1
            x = x_new
        if after_step is not None:
            x = after_step(x)
    return x


# ------------------------------------------------------------------------------------------------ KV cache
@dataclass
class OfficialBuffer:
    """The official per-layer KV buffer at frame granularity (an AttentionCache for the project's
    transformer).

    ``slots[i]`` holds, for buffer frame position ``i < local_end``, the per-layer ``(k, v)`` of one latent
    frame (keys rotated, as the official code caches them). Sizes in latent frames.
    """

    num_layers: int
    tokens_per_frame: int
    size: int = 32
    sink: int = 8
    global_sink: int = 8
    slots: list = field(default_factory=list)
    global_end: int = 0
    pinned_start: int = -1
    pinned_len: int = 0
    relative_rope = False

    @property
    def local_end(self) -> int:
        return len(self.slots)

    def assign(self, start: int, n: int) -> dict:
        has_pinned = self.pinned_start >= 0 and self.pinned_len > 0
        if has_pinned and self.pinned_start == self.global_sink:
            eff = self.global_sink + self.pinned_len
        elif has_pinned:
            eff = self.global_sink
        else:
            eff = max(self.global_sink, self.sink)
        end, local_end = start + n, self.local_end
        temp = list(self.slots) + [None] * (self.size - local_end)
        shift = 0
        if end > self.global_end and n + local_end > self.size:
            evicted = n + local_end - self.size
            rolled = local_end - evicted - eff
            new_end = local_end + end - self.global_end - evicted
            temp[eff : eff + rolled] = temp[eff + evicted : eff + evicted + rolled]
            shift = evicted if has_pinned and self.pinned_start >= eff else 0
        else:
            new_end = local_end + end - self.global_end
        assert new_end <= self.size  # window start max(0, new_end - size) == 0: no prepended sink
        first = new_end - n
        for j in range(n):
            temp[first + j] = ("new", j)
        return {"temp": temp[:new_end], "end": end, "shift": shift, "new": [None] * self.num_layers}

    def attend(self, layer, plan, k, v, cos, sin):
        k = apply_rope(k, cos, sin)
        t = self.tokens_per_frame
        plan["new"][layer] = (k, v)
        ks, vs = [], []
        for entry in plan["temp"]:
            if isinstance(entry, tuple) and entry and entry[0] == "new":
                j = entry[1]
                ks.append(k[:, j * t : (j + 1) * t])
                vs.append(v[:, j * t : (j + 1) * t])
            else:
                ks.append(entry[layer][0])
                vs.append(entry[layer][1])
        if layer == self.num_layers - 1:
            self._commit(plan)
        return torch.cat(ks, dim=1), torch.cat(vs, dim=1), None

    def _commit(self, plan) -> None:
        t = self.tokens_per_frame
        slots = []
        for entry in plan["temp"]:
            if isinstance(entry, tuple) and entry and entry[0] == "new":
                j = entry[1]
                entry = [
                    (k[:, j * t : (j + 1) * t].clone(), v[:, j * t : (j + 1) * t].clone())
                    for k, v in plan["new"]
                ]
            slots.append(entry)
        self.slots, self.global_end = slots, plan["end"]
        self.pinned_start -= plan["shift"]

    def zero(self, start: int) -> None:
        """``_zero_kv_data``: keep the global sink only; the next write lands right after it."""
        self.slots = self.slots[: self.global_sink]
        self.global_end, self.pinned_start, self.pinned_len = start, -1, 0

    def pin(self, n: int) -> None:
        """``_pin_current_chunk``: the block just written becomes the shot sink."""
        self.pinned_start, self.pinned_len = self.local_end - n, min(self.sink, n)


# ------------------------------------------------------------------------------------------------ loop
@torch.inference_mode()
def official_v2_latents(
    model,
    encode,
    block_texts: list[str],
    *,
    latent_height: int,
    latent_width: int,
    seed: int,
    multi_shot_sink: bool = True,
    shot_clean_recache: bool = False,
    image_latent: torch.Tensor | None = None,
    fpb: int = 8,
    channels: int = 48,
) -> torch.Tensor:
    """The official 2.0 inference's latents ``[1, F, 48, h, w]`` for one block text per block (the prefixed
    text on a shot's first block, as ``utils/dataset.py`` ``_apply_shot_durations`` writes them).

    ``model``: a ``CausalWanTransformer`` (its forward pass only); ``encode(text)`` -> UMT5 embedding
    ``[1, n, text_dim]``. Noise: one CPU generator, ``randn([1, F, 48, h, w])`` in one draw.
    """
    num_blocks = len(block_texts)
    timesteps, sigmas = official_grid()
    noise = torch.randn(
        (1, num_blocks * fpb, channels, latent_height, latent_width),
        generator=torch.Generator().manual_seed(seed),
    )
    cache = OfficialBuffer(
        num_layers=model.num_layers,
        tokens_per_frame=model.tokens_per_frame(latent_height, latent_width),
        global_sink=8 if multi_shot_sink else 0,
    )
    out, shot = [], 0
    for b, text in enumerate(block_texts):
        boundary = b > 0 and text.startswith(PREFIX)
        if boundary:
            shot += 1
        offset, start = 8 * shot, b * fpb
        prompt = model.encode_prompt(encode(text))
        i2v = image_latent is not None and b == 0

        def overwrite(x, i2v=i2v):
            if not i2v:
                return x
            x = x.clone()
            x[:, :1] = image_latent
            return x

        def flow_at(x, i, start=start, offset=offset, prompt=prompt, i2v=i2v):
            t = torch.full((1, fpb), timesteps[i])
            if i2v:
                t[:, 0] = 0
            return model(overwrite(x), t, prompt, start_frame=start, cache=cache, rope_offset=offset)

        x = unipc_block(flow_at, noise[:, start : start + fpb].clone(), sigmas, after_step=overwrite)
        x = overwrite(x)
        cut = boundary and multi_shot_sink
        if cut and shot_clean_recache:
            cache.zero(start)
        model(x, torch.zeros(1, fpb), prompt, start_frame=start, cache=cache, rope_offset=offset)
        if cut:
            cache.pin(fpb)
        out.append(x)
    return torch.cat(out, dim=1)


def load_official_transformer(path, config: dict, layout: dict):
    """A ``WanTransformer3DModel`` with the ``model.<Wan key>`` weights of the official file at ``path``
    (entry
    ``generator``), renamed through ``layout`` (Wan name -> (shape, diffusers name)) and loaded strictly."""
    from diffusers import WanTransformer3DModel

    sd = torch.load(path, map_location="cpu", weights_only=True)["generator"]
    renamed = {layout[k.removeprefix("model.")][1]: v.float() for k, v in sd.items()}
    wan = WanTransformer3DModel(**config)
    wan.load_state_dict(renamed, strict=True)
    return wan.eval()
