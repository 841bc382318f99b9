"""Weight sources: parsing, the Hub cache, offline mode, and errors that say what to do."""

from __future__ import annotations

import time

import pytest
from helpers import populate_hub_cache

from longlive_cli import hub
from longlive_cli.hub import Source, WeightsUnavailableError, fetch, parse_source


def test_parse_source_forms(tmp_path):
    assert parse_source("owner/repo:models/lora.pt") == Source("owner/repo", "models/lora.pt")
    assert parse_source("owner/repo") == Source("owner/repo", "")
    (tmp_path / "w.pt").write_bytes(b"x")
    assert parse_source("w.pt", relative_to=tmp_path) == Source(None, str((tmp_path / "w.pt").resolve()))
    assert parse_source("missing/file.pt:x", relative_to=tmp_path).repo == "missing/file.pt"
    assert parse_source("./nope.pt", relative_to=tmp_path) == Source(None, str(tmp_path / "nope.pt"))
    with pytest.raises(ValueError, match="empty weight source"):
        parse_source("  ")


def test_local_source_must_exist(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="no such file") as err:
        fetch(Source(None, str(tmp_path / "gone.pt")))
    assert "--model tiny-random" in str(err.value)


def test_hub_file_is_found_in_a_prepopulated_cache_offline(tmp_path):
    src = tmp_path / "lora.pt"
    src.write_bytes(b"weights")
    populate_hub_cache("owner/repo", {"models/lora.pt": src})
    path = fetch(Source("owner/repo", "models/lora.pt"))
    assert path.read_bytes() == b"weights"


def test_hub_folder_is_found_in_a_prepopulated_cache_offline(tmp_path):
    folder = tmp_path / "tok"
    folder.mkdir()
    (folder / "tokenizer.json").write_text("{}")
    populate_hub_cache("owner/repo", {"google/umt5-xxl": folder})
    path = fetch(Source("owner/repo", "google/umt5-xxl"), folder=True)
    assert (path / "tokenizer.json").read_text() == "{}"


def test_missing_file_offline_names_repo_file_size_and_ways_out():
    with pytest.raises(WeightsUnavailableError) as err:
        fetch(Source("owner/repo", "big.pth"), size="11.4 GB", model="longlive-1.3b")
    msg = str(err.value)
    for part in (
        "owner/repo:big.pth",
        "11.4 GB",
        "offline",
        "longlive download longlive-1.3b",
        "--model PATH",
    ):
        assert part in msg


def test_unreachable_hub_fails_fast_without_download_attempts(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(hub, "_hub_reachable", lambda timeout_s=3.0: "hub.example:443 unreachable (test)")
    calls = []
    import huggingface_hub

    real = huggingface_hub.hf_hub_download

    def spy(*args, **kwargs):
        calls.append(kwargs.get("local_files_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", spy)
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match=r"cannot be reached: hub\.example"):
        fetch(Source("owner/repo", "x.pt"))
    assert time.perf_counter() - start < 5
    assert calls == [True]  # only the cache was asked


def test_offline_flag_and_env(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert hub.hub_offline(True) and not hub.hub_offline(False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.hub_offline(False)
