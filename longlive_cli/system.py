"""What this machine offers a GPU run, found without importing torch: the installed torch build, the NVIDIA
driver and GPUs, and why CUDA is unusable when a GPU is there but PyTorch cannot use it.

PyPI's torch 2.11 and later are CUDA 13 builds, which need an NVIDIA driver >= 580; with an older driver
``torch.cuda.is_available()`` is False although the GPU is fine, and a run on ``--device auto`` would quietly
take the CPU. :func:`cuda_unusable_reason` names that case and the ways out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib import metadata, util
from pathlib import Path

__all__ = [
    "cpu_name",
    "cuda_unusable_reason",
    "describe",
    "driver_version",
    "gpus",
    "hardware",
    "torch_build",
]

#: The oldest driver each CUDA major version runs on (NVIDIA's CUDA compatibility tables: 12.x with minor
#: version compatibility from 525.60.13, 13.x from 580).
MIN_DRIVER = {12: (525, 60), 13: (580, 0)}


def torch_build() -> dict[str, str | None]:
    """``{"version", "cuda", "cudnn"}`` of the installed torch: its version, the CUDA it was built for
    (None: a CPU build) and the cuDNN wheel beside it, read from files, not by importing torch."""
    try:
        version: str | None = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return {"version": None, "cuda": None, "cudnn": None}
    cuda = None
    spec = util.find_spec("torch")
    if spec is not None and spec.submodule_search_locations:
        text = (Path(next(iter(spec.submodule_search_locations))) / "version.py").read_text(errors="replace")
        match = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
        cuda = match.group(1) if match else None
    cudnn = None
    for name in ("nvidia-cudnn-cu13", "nvidia-cudnn-cu12"):
        try:
            cudnn = metadata.version(name)
            break
        except metadata.PackageNotFoundError:
            continue
    return {"version": version, "cuda": cuda, "cudnn": cudnn}


def driver_version() -> str | None:
    """The loaded NVIDIA kernel driver's version (``/proc/driver/nvidia/version``), or None."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return None
    match = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else None


def gpus() -> list[str]:
    """``name, memory`` of each GPU ``nvidia-smi`` lists (empty without it or without a GPU)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def _gpu_device_nodes() -> bool:
    return any(Path("/dev").glob("nvidia[0-9]*"))


def cuda_unusable_reason(build: dict[str, str | None] | None = None, driver: str | None = None) -> str | None:
    """Why PyTorch cannot use a GPU that is present, with the way out; None when no GPU is visible or torch is
    a CPU build (nothing to explain). Call it when ``torch.cuda.is_available()`` is False."""
    build = build if build is not None else torch_build()
    driver = driver if driver is not None else driver_version()
    if build["cuda"] is None or not (_gpu_device_nodes() or driver):
        return None
    major = int(build["cuda"].split(".")[0])
    need = MIN_DRIVER.get(major)
    have = tuple(int(x) for x in driver.split(".")[:2]) if driver else None
    if need and have and have < need:
        return (
            f"a GPU is present but PyTorch {build['version']} is built for CUDA {build['cuda']}, which needs "
            f"NVIDIA driver >= {need[0]}; this machine's driver is {driver}. Update the driver, or install a "
            "torch built for an older CUDA (torch 2.10's CUDA 12.8 build runs on drivers >= 525; see "
            "docs/install.md, 'GPU install')."
        )
    return (
        f"a GPU is present (driver {driver or 'unknown'}) but PyTorch {build['version']} "
        f"(CUDA {build['cuda']}) cannot use it: check that the driver is loaded (nvidia-smi) and that "
        "LD_LIBRARY_PATH does not shadow the CUDA/cuDNN libraries that came with torch."
    )


def describe() -> list[str]:
    """Lines for ``longlive info``: torch build, cuDNN, driver, GPUs."""
    build, driver = torch_build(), driver_version()
    lines = [
        f"torch {build['version'] or 'not installed'}"
        + (f", built for CUDA {build['cuda']}" if build["cuda"] else ", CPU build"),
        f"cuDNN wheel: {build['cudnn'] or 'none'}",
        f"NVIDIA driver: {driver or 'none found'}",
    ]
    found = gpus()
    lines += [f"GPU: {g}" for g in found] or ["GPU: none found (nvidia-smi)"]
    return lines


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else :func:`platform.processor`) and its logical cores."""
    import os
    import platform

    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware")):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    name = name or platform.processor() or platform.machine() or "unknown CPU"
    return f"{name} ({os.cpu_count() or '?'} logical cores)"


def hardware(device: str = "cpu") -> dict[str, str | None]:
    """What a benchmark ran on: ``{"cpu", "gpu", "driver", "torch", "cuda"}``. ``gpu``: the GPU used on a
    ``cuda`` run (name and memory, from ``nvidia-smi``; the first listed), else None; ``cuda``: the CUDA
    version torch was built for (None: a CPU build)."""
    build = torch_build()
    found = gpus() if device == "cuda" else []
    return {
        "cpu": cpu_name(),
        "gpu": found[0] if found else None,
        "driver": driver_version(),
        "torch": build["version"],
        "cuda": build["cuda"],
    }
