"""Test-wide safety: no test reaches the network or the user's caches; tests marked ``gpu`` need CUDA.

And the fixtures several test files share: ``model``, the tiny causal transformer (seed 0), and ``embeds``,
three random prompt embeddings ``[1, 512, 32]`` (seed 1); both built once per test module.
"""

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


@pytest.fixture(scope="module")
def model():
    """The tiny random causal transformer (``tiny_transformer_config``, weights from seed 0), eval mode."""
    import torch
    from diffusers import WanTransformer3DModel

    from longlive_cli.models.spec import tiny_transformer_config
    from longlive_cli.models.transformer import CausalWanTransformer

    torch.manual_seed(0)
    return (
        CausalWanTransformer(WanTransformer3DModel(**tiny_transformer_config())).eval().requires_grad_(False)
    )


@pytest.fixture(scope="module")
def embeds():
    """Three random UMT5-like prompt embeddings ``[1, 512, 32]`` (text_dim of the tiny model), seed 1."""
    import torch

    g = torch.Generator().manual_seed(1)
    return [torch.randn(1, 512, 32, generator=g) for _ in range(3)]


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``gpu`` when PyTorch sees no CUDA GPU."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
