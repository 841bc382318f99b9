"""The hostile-weights corpus (issue 20 item 4): for every weight role a model has (generator, LoRA, user
LoRA, text encoder as a folder and as a Wan ``.pth``, tokenizer, VAE as a file and as a folder, the TAEHV and
LightVAE decoders), a file that is empty, cut in half, full of unrelated tensors, a safetensors header that
claims 2^40 bytes, a pickle that would run code, a FIFO, a folder and ``/dev/zero``. Each is refused with a
``ModelError`` (exit 3) whose message names the file, without hanging, without running the pickle, and never
loads as random weights. Library calls (fast), plus a few through the command line (exit 3, no traceback).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import struct
from pathlib import Path

import pytest
import torch
from helpers import random_wan, save_official, write_tiny_base
from safetensors.torch import save_file
from typer.testing import CliRunner

from longlive_cli.api import LongLive
from longlive_cli.cli import app
from longlive_cli.errors import EXIT_MODEL, ModelError
from longlive_cli.models.weightfiles import WeightFileError, check_safetensors

KINDS = ["empty", "truncated", "unrelated", "huge_header", "pickle", "fifo", "folder", "dev_zero"]
#: role -> (spec field, a folder role?, loaded by the text side?)
ROLES = {
    "generator": ("generator", False, False),
    "lora": ("lora", False, False),
    "user_lora": ("loras", False, False),
    "text_encoder": ("text_encoder", True, True),
    "text_encoder_pth": ("text_encoder", False, True),
    "tokenizer": ("tokenizer", True, True),
    "vae": ("vae", False, False),
    "vae_folder": ("vae", True, False),
    "taehv": ("decoder_weights", False, False),
    "lightvae": ("decoder_weights", False, False),
}


class Payload:
    """Unpickling this runs ``touch <marker>`` (what a hostile .pt would do without ``weights_only``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile-release")
    write_tiny_base(root / "base")
    save_official(root / "gen.pt", {k: v * 0.2 for k, v in random_wan(1).items()})
    return root


def _hostile(kind: str, path: Path, whole: Path, marker: Path) -> Path:
    """Write the hostile ``kind`` at ``path`` (``whole``: a sound safetensors file to cut)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = whole.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "unrelated":
        save_file({"unrelated.weight": torch.zeros(2, 2)}, str(path))
    elif kind == "huge_header":
        path.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"weight": Payload(marker)}))
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "dev_zero":
        os.symlink("/dev/zero", path)
    return path


def _folder_role(kind: str, role: str, release: Path, case: Path, marker: Path) -> tuple[Path, Path]:
    """A copy of the role's folder with its main file replaced (or the folder itself replaced, for the
    special files); (the folder to give, the file the message must name)."""
    sub, main = {
        "text_encoder": ("text_encoder", "model.safetensors"),
        "tokenizer": ("tokenizer", "tokenizer.json"),
        "vae_folder": ("vae", "diffusion_pytorch_model.safetensors"),
    }[role]
    folder = case / sub
    shutil.copytree(release / "base" / sub, folder)
    if kind in ("fifo", "folder", "dev_zero"):
        shutil.rmtree(folder)
        if kind == "folder":  # an empty folder
            folder.mkdir()
            return folder, folder
        _hostile(kind, folder, folder, marker)
        return folder, folder if kind != "dev_zero" else Path("/dev/zero")
    (folder / main).unlink()
    name = main
    if kind == "pickle" and main.endswith(".safetensors"):  # the folder's torch-file form
        name = "pytorch_model.bin" if role == "text_encoder" else "diffusion_pytorch_model.bin"
    target = _hostile(kind, folder / name, release / "base" / sub / main, marker)
    return folder, target


def _case(role: str, kind: str, release: Path, case: Path) -> tuple[Path, Path]:
    """Write a spec whose ``role`` is hostile ``kind``; (the spec, the path the message must name)."""
    field, folder_role, _ = ROLES[role]
    marker = case / "PWNED"
    fields: dict = {"base": str(release / "base"), "generator": str(release / "gen.pt")}
    whole = release / "base" / "vae" / "diffusion_pytorch_model.safetensors"
    if folder_role:
        given, named = _folder_role(kind, role, release, case, marker)
    else:
        suffix = ".pth" if role == "text_encoder_pth" or kind == "pickle" else ".safetensors"
        given = _hostile(kind, case / f"{role}{suffix}", whole, marker)
        named = Path("/dev/zero") if kind == "dev_zero" else given
    fields[field] = [str(given)] if field == "loras" else str(given)
    if role == "lora":
        fields |= {"lora_rank": 4, "lora_alpha": 8}
    if role in ("taehv", "lightvae"):
        fields["decoder"] = role
    if role.startswith("text_encoder"):
        fields["tokenizer"] = str(release / "base" / "tokenizer")
    spec = case / "spec.yaml"
    spec.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in fields.items()))
    return spec, named


@pytest.fixture
def deadline():
    """A hang (a FIFO opened for reading, /dev/zero read to its end) fails the test after 60 s."""

    def hung(signum, frame):
        raise TimeoutError("the load hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", list(ROLES))
def test_every_weight_role_refuses_every_hostile_file_naming_it(release, tmp_path, role, kind, deadline):
    spec, named = _case(role, kind, release, tmp_path)

    def load() -> None:
        ll = LongLive.from_pretrained(str(spec), device="cpu", memory_check=False, embed_cache=False)
        ll.text_encoder(keep=True) if ROLES[role][2] else ll.load()

    with pytest.raises(ModelError) as caught:
        load()
    message = str(caught.value)
    assert caught.value.exit_code == EXIT_MODEL
    assert str(named) in message, message
    assert not (tmp_path / "PWNED").exists(), "a pickle payload ran"
    if kind in ("fifo", "dev_zero"):
        assert ("FIFO" if kind == "fifo" else "device") in message, message
    if kind == "unrelated" and role in ("text_encoder", "vae_folder"):  # loaded at random before
        assert "missing" in message and "first:" in message, message


def test_a_safetensors_header_is_checked_against_the_file(tmp_path):
    good = tmp_path / "good.safetensors"
    save_file({"a": torch.zeros(64)}, str(good))
    check_safetensors(good)  # whole: fine
    data = good.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[:-10])
    with pytest.raises(WeightFileError, match="cut short: its tensors need"):
        check_safetensors(cut)
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 2**40) + data[8:])
    with pytest.raises(WeightFileError, match="header claims 1099511627776 bytes"):
        check_safetensors(huge)


@pytest.mark.parametrize(
    ("role", "kind"), [("vae", "fifo"), ("text_encoder", "truncated"), ("user_lora", "pickle")]
)
def test_the_command_line_exits_3_naming_the_file_without_a_traceback(
    release, tmp_path, role, kind, deadline
):
    spec, named = _case(role, kind, release, tmp_path)
    story = tmp_path / "s.yaml"
    story.write_text("duration: 1s\nresolution: 64x48\nprompts:\n  - {at: 0s, text: a fox}\n")
    out = tmp_path / "o.mp4"
    args = ["generate", str(story), "-o", str(out), "-m", str(spec), "--device", "cpu", "--no-memory-check"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_MODEL, result.output
    assert str(named) in result.stderr and "Traceback" not in result.output, result.stderr
    assert not out.exists() and not list(tmp_path.glob(".o.mp4.part-*"))
