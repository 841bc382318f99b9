"""Weight sources: local paths and Hugging Face Hub references, resolved through huggingface-hub's cache.

A source is written as one of:

* ``owner/repo:path/in/repo`` -- one file (or, with ``folder=True``, a folder) of a Hub repo;
* ``owner/repo`` -- a whole Hub repo (the diffusers-layout base);
* a local file or folder (relative paths resolve against the spec file's folder).

Files come from huggingface-hub's cache (``HF_HOME`` / ``HF_HUB_CACHE``) when present. With
``offline`` (``--offline`` or ``HF_HUB_OFFLINE=1``) nothing else is tried. Otherwise the Hub is
probed once, briefly, before a download, so that a machine without a network gets a clear error
in seconds instead of minutes of retries.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from .errors import ModelError

_HUB_FILE = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+):(?P<path>[^:]+)$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class WeightsUnavailableError(ModelError):
    """A weight source cannot be had; ``str()`` names it and lists the ways out."""


@dataclass(frozen=True)
class Source:
    """Where one weight file or folder lives: ``repo`` None means the local path ``path``."""

    repo: str | None
    path: str

    def __str__(self) -> str:
        if self.repo is None:
            return self.path
        return self.repo if not self.path else f"{self.repo}:{self.path}"


def parse_source(value: str, *, relative_to: Path | None = None) -> Source:
    """Parse a source string (see the module docstring).

    A string that names an existing local file or folder is local even if it looks like a repo id.

    Raises:
        ValueError: for an empty string.
    """
    value = str(value).strip()
    if not value:
        raise ValueError("empty weight source")
    local = Path(value).expanduser()
    if not local.is_absolute() and relative_to is not None:
        local = relative_to / local
    if local.exists():
        return Source(None, str(local.resolve()))
    if m := _HUB_FILE.match(value):
        return Source(m["repo"], m["path"].strip("/"))
    if _REPO_ID.match(value) and not value.startswith((".", "/", "~")):
        return Source(value, "")
    return Source(None, str(local))


def hub_offline(offline: bool = False) -> bool:
    """True with ``offline`` or when ``HF_HUB_OFFLINE`` is set to a true value."""
    return offline or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _hub_reachable(timeout_s: float = 3.0) -> str | None:
    """None when the Hub endpoint accepts a TCP connection, else the reason it does not."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout_s):
            return None
    except OSError as err:
        return f"{url.hostname}:{port} unreachable ({err.strerror or err})"


def _unavailable(source: Source, why: str, size: str | None, model: str | None) -> WeightsUnavailableError:
    from huggingface_hub import constants

    what = f"{source}" + (f" (about {size})" if size else "")
    download = f"`longlive download {model}`" if model else "`longlive download`"
    return WeightsUnavailableError(
        f"cannot get {what}: {why}.\n"
        f"Ways out: run {download} on a machine with internet and copy its Hugging Face cache "
        f"({constants.HF_HUB_CACHE}) here; or pass --model PATH to a model spec whose sources are local "
        "files; or try the tool with --model tiny-random (random weights, noise-like video)."
    )


def fetch(
    source: Source,
    *,
    offline: bool = False,
    folder: bool = False,
    size: str | None = None,
    model: str | None = None,
) -> Path:
    """Local path of ``source``, downloading it into the Hub cache when needed.

    Args:
        source: what to get.
        offline: use only the local cache (also when ``HF_HUB_OFFLINE`` is set).
        folder: the Hub path is a folder (or ``""``: the whole repo); all files under it are fetched.
        size: approximate size for messages, e.g. ``"508 MB"``.
        model: the model name to suggest in ``longlive download MODEL``.

    Raises:
        WeightsUnavailableError: missing local path, not in the cache while offline, Hub unreachable,
            or the repo/file does not exist. The message names the source and the ways out.
    """
    if source.repo is None:
        if not Path(source.path).exists():
            raise _unavailable(source, "no such file or folder", size, model)
        return Path(source.path)

    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

    repo = source.repo
    assert repo is not None  # local paths returned above

    def get(local_only: bool) -> Path:
        if folder:
            patterns = [f"{source.path}/*"] if source.path else None
            root = snapshot_download(repo, allow_patterns=patterns, local_files_only=local_only)
            return Path(root) / source.path
        return Path(hf_hub_download(repo, source.path, local_files_only=local_only))

    try:
        return get(local_only=True)
    except (EntryNotFoundError, FileNotFoundError, OSError, ValueError):
        pass  # not cached (completely) yet
    if hub_offline(offline):
        raise _unavailable(
            source, "it is not in the local Hugging Face cache and offline mode is on", size, model
        )
    if (reason := _hub_reachable()) is not None:
        raise _unavailable(
            source, f"it is not in the local cache and the Hub cannot be reached: {reason}", size, model
        )
    try:
        return get(local_only=False)
    except RepositoryNotFoundError:
        raise _unavailable(
            source, f"the Hub has no repo {source.repo!r} (or it needs a login)", size, model
        ) from None
    except EntryNotFoundError:
        raise _unavailable(source, f"the repo has no file {source.path!r}", size, model) from None
    except (HfHubHTTPError, OSError) as err:
        raise _unavailable(source, f"the download failed: {err}", size, model) from None


def find_local(source: Source, *, folder: bool = False) -> Path | None:
    """Local path of ``source`` when it is there now: a local path that exists, or a Hub file (or folder)
    complete in the Hugging Face cache; None otherwise. Never downloads and never touches the network, so
    every check can run before anything is fetched (:func:`fetch` gets what is missing)."""
    if source.repo is None:
        return Path(source.path) if Path(source.path).exists() else None
    try:
        return fetch(source, offline=True, folder=folder)
    except WeightsUnavailableError:
        return None


def disk_size(path: Path) -> int:
    """Bytes on disk of a file, or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
