"""GPU readiness without a GPU: what torch build and driver a machine has, and the refusal to fall to the CPU
when a GPU is there but this torch cannot use it."""

from __future__ import annotations

import pytest
import torch

from longlive_cli import system
from longlive_cli.errors import InputError
from longlive_cli.runtime import resolve_device

CUDA13 = {"version": "2.13.0", "cuda": "13.0", "cudnn": "9.10.2.21"}


def test_an_old_driver_for_a_cuda_13_build_is_named_with_the_way_out(monkeypatch):
    monkeypatch.setattr(system, "_gpu_device_nodes", lambda: True)
    reason = system.cuda_unusable_reason(CUDA13, "570.124.06")
    assert reason is not None and "needs NVIDIA driver >= 580" in reason and "570.124.06" in reason
    assert "CUDA 12.8 build" in reason
    other = system.cuda_unusable_reason(CUDA13, "580.65.06")  # new enough: something else is wrong
    assert other is not None and "LD_LIBRARY_PATH" in other
    assert (
        system.cuda_unusable_reason({**CUDA13, "cuda": None}, "570.1") is None
    )  # a CPU build: nothing to say
    monkeypatch.setattr(system, "_gpu_device_nodes", lambda: False)
    assert system.cuda_unusable_reason(CUDA13, None) is None  # no GPU at all


def test_auto_does_not_quietly_take_the_cpu_when_a_gpu_is_unusable(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(system, "cuda_unusable_reason", lambda: "a GPU is present but (simulated).")
    for device in ("auto", "cuda"):
        with pytest.raises(InputError, match=r"\(simulated\)\. To run on the CPU anyway, pass --device cpu"):
            resolve_device(device)
    assert resolve_device("cpu") == "cpu"
    monkeypatch.setattr(system, "cuda_unusable_reason", lambda: None)
    assert resolve_device("auto") == "cpu"


def test_the_torch_build_is_read_without_importing_torch():
    build = system.torch_build()
    assert build["version"] in (torch.__version__, torch.__version__.split("+")[0])
    assert build["cuda"] == torch.version.cuda
