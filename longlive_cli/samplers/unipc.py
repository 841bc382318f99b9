"""The flow-matching UniPC solver of LongLive 2.0, with the official numbers.

Source: NVlabs/LongLive ``main`` 7860ad9 ``wan_5b/utils/fm_solvers_unipc.py``
(``FlowUniPCMultistepScheduler``,
from Wan2.2), as ``pipeline/causal_diffusion_inference.py:892-899`` builds it for every block:
``FlowUniPCMultistepScheduler(num_train_timesteps=1000, shift=1, use_dynamic_shifting=False)`` then
``set_timesteps(steps, shift=5)``; defaults ``solver_order=2``, ``solver_type="bh2"``, ``predict_x0=True``,
``lower_order_final=True``, corrector on, ``final_sigmas_type="zero"``. Written here from those rules:

* **Grid** (``set_timesteps``, lines 162-230): ``sigma_max`` = the float32 value of ``0.999`` (the first entry
of
  the training table ``1 - linspace(1, 1/1000, 1000)[::-1]``), ``sigma_min = 0``; ``s = linspace(sigma_max, 0,
  steps + 1)[:-1]`` (float64, numpy), shifted ``shift*s / (1 + (shift - 1)*s)``; the model's timesteps are
  ``int64(1000 * s)`` (truncated: 999, 937, 833, 624 for 4 steps, shift 5), the solver's sigmas are ``s`` as
  float32 followed by 0 (0.99980, 0.93727, 0.83306, 0.62469, 0). diffusers' own ``UniPCMultistepScheduler``
  with flow sigmas builds another grid (t = 625 at the last step; about 1e-3 relative apart after 4 steps).
* **Model output** (``convert_model_output``): the model predicts the flow ``v``; ``x0 = x - sigma * v``.
* **Step** ``i`` (``step``, lines 657-741): with ``lambda = log(1 - sigma) - log(sigma)`` and
  ``h = lambda_{i+1} - lambda_i``: the UniC corrector first (from step 1 on, with the order of the previous
  predictor), then the UniP predictor of order ``min(2, steps - i, i + 1)`` (1, 2, 2, 1 for 4 steps).
  ``bh2``: ``B(h) = expm1(-h)``; the order-2 predictor uses ``rho = 1/2``, the order-2 corrector solves the
  2x2 system ``R rho = b`` (float32), the order-1 corrector uses ``rho = 1/2``. The last step (sigma 0)
  returns
  that step's x0 exactly. Scalars are float32 0-dim tensors, as in the official code, and the sample keeps
  its dtype.

No random numbers: the solver is deterministic given the model outputs.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["FlowUniPC", "flow_unipc_grid"]


def flow_unipc_grid(
    steps: int, shift: float, num_train_timesteps: int = 1000
) -> tuple[list[int], torch.Tensor]:
    """The model timesteps and the solver sigmas of ``set_timesteps(steps, shift=shift)``.

    Returns:
        ``(timesteps, sigmas)``: ``steps`` int timesteps on the 0..1000 scale (what the model sees), and
        float32 sigmas ``[steps + 1]`` ending in 0.

    Raises:
        ValueError: ``steps < 1`` or a non-positive ``shift``.
    """
    if steps < 1 or shift <= 0:
        raise ValueError(f"flow UniPC needs steps >= 1 and shift > 0, got steps={steps}, shift={shift}")
    n = num_train_timesteps
    table = torch.from_numpy(1.0 - np.linspace(1, 1 / n, n)[::-1].copy()).to(torch.float32)
    sigma_max, sigma_min = table[0].item(), table[-1].item()
    s = np.linspace(sigma_max, sigma_min, steps + 1).copy()[:-1]
    s = shift * s / (1 + (shift - 1) * s)
    timesteps = torch.from_numpy(s * n).to(torch.int64).tolist()
    sigmas = torch.from_numpy(np.concatenate([s, [0.0]]).astype(np.float32))
    return timesteps, sigmas


class FlowUniPC:
    """One block's multistep UniPC run (a fresh one per block, as the official pipeline makes).

    Args:
        sigmas: float32 ``[steps + 1]`` from :func:`flow_unipc_grid`.

    Call :meth:`step` once per timestep, in order, with the model's flow prediction for the current sample;
    it returns the next sample (after the last step: the final x0). Tensors are the latents of the block,
    any shape, any float dtype.
    """

    order = 2

    def __init__(self, sigmas: torch.Tensor) -> None:
        self.sigmas = sigmas.to(torch.float32).cpu()
        self.steps = len(self.sigmas) - 1
        self.index = 0
        self.x0s: list[torch.Tensor] = []  # the converted outputs (x0) of the steps so far, latest last
        self.last_sample: torch.Tensor | None = None
        self.last_order = 0

    def _lambda(self, i: int) -> torch.Tensor:
        sigma = self.sigmas[i]
        return torch.log(1 - sigma) - torch.log(sigma)

    def step(self, flow: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """One solver step at step index :attr:`index`: ``flow`` is the model's output for ``sample``."""
        i = self.index
        if i >= self.steps:
            raise RuntimeError(f"all {self.steps} steps of this UniPC run are done")
        x0 = sample - self.sigmas[i] * flow
        if i > 0 and self.last_sample is not None:
            sample = self._correct(x0)
        self.x0s = [*self.x0s[-(self.order - 1) :], x0] if self.order > 1 else [x0]
        order = min(self.order, self.steps - i, i + 1)
        self.last_sample, self.last_order = sample, order
        out = self._predict(sample, order)
        self.index += 1
        return out

    def _phi(self, h: torch.Tensor, order: int, rks: list[torch.Tensor]):
        """``(hh, h*phi_1, B(h), R, b)`` of the B(h) update, ``hh = -h`` (predict-x0), bh2."""
        hh = -h
        h_phi_1 = torch.expm1(hh)
        b_h = torch.expm1(hh)
        h_phi_k = h_phi_1 / hh - 1
        factorial, rows, rhs = 1, [], []
        r = torch.tensor([*rks, 1.0])
        for k in range(1, order + 1):
            rows.append(torch.pow(r, k - 1))
            rhs.append(h_phi_k * factorial / b_h)
            factorial *= k + 1
            h_phi_k = h_phi_k / hh - 1 / factorial
        return h_phi_1, b_h, torch.stack(rows), torch.tensor(rhs)

    def _predict(self, x: torch.Tensor, order: int) -> torch.Tensor:
        """UniP from sigma_i to sigma_{i+1} (``multistep_uni_p_bh_update``)."""
        i = self.index
        sigma_t, sigma_s = self.sigmas[i + 1], self.sigmas[i]
        alpha_t = 1 - sigma_t
        lam_s = self._lambda(i)
        h = (torch.log(alpha_t) - torch.log(sigma_t)) - lam_s
        m0 = self.x0s[-1]
        rks, d1 = [], None
        if order == 2:
            rk = (self._lambda(i - 1) - lam_s) / h
            rks, d1 = [rk], (self.x0s[-2] - m0) / rk
        h_phi_1, b_h, _, _ = self._phi(h, order, rks)
        x_t = sigma_t / sigma_s * x - alpha_t * h_phi_1 * m0
        if d1 is not None:
            rho = torch.tensor(0.5, dtype=x.dtype)
            x_t = x_t - alpha_t * b_h * (rho * d1)
        return x_t.to(x.dtype)

    def _correct(self, x0: torch.Tensor) -> torch.Tensor:
        """UniC at sigma_i with this step's ``x0`` (``multistep_uni_c_bh_update``), order of the last
        predictor."""
        assert self.last_sample is not None
        i, order, x = self.index, self.last_order, self.last_sample
        sigma_t, sigma_s = self.sigmas[i], self.sigmas[i - 1]
        alpha_t = 1 - sigma_t
        lam_s = self._lambda(i - 1)
        h = (torch.log(alpha_t) - torch.log(sigma_t)) - lam_s
        m0 = self.x0s[-1]
        rks, d1 = [], None
        if order == 2:
            rk = (self._lambda(i - 2) - lam_s) / h
            rks, d1 = [rk], (self.x0s[-2] - m0) / rk
        h_phi_1, b_h, big_r, b = self._phi(h, order, rks)
        rhos = torch.tensor([0.5]) if order == 1 else torch.linalg.solve(big_r, b)
        rhos = rhos.to(x.dtype)
        x_t = sigma_t / sigma_s * x - alpha_t * h_phi_1 * m0
        corr = 0 if d1 is None else rhos[0] * d1
        x_t = x_t - alpha_t * b_h * (corr + rhos[-1] * (x0 - m0))
        return x_t.to(x.dtype)
