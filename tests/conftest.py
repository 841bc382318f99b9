"""Test-wide safety: no test reaches the network or the user's caches; tests marked ``gpu`` need CUDA."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path_factory, monkeypatch):
    """Point the Hugging Face cache and the conversion cache at empty folders, offline."""
    from huggingface_hub import constants

    root = tmp_path_factory.mktemp("caches")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LONGLIVE_CACHE", str(root / "longlive"))
    return root


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``gpu`` when PyTorch sees no CUDA GPU."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
