"""Where model weights come from, the way diffusers and transformers users expect it.

A weight source is a local folder or file, or a Hugging Face hub id (``org/name``) resolved
through the Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE`` or an explicit ``cache_dir``) at a
``revision``, with a ``token`` for gated or private repositories. ``local_files_only=None``
follows ``HF_HUB_OFFLINE``. The plugins that load weights (texkit-diffusers, texkit-rewards-image)
call the libraries themselves; this module only decides what a source is, resolves the options
at call time (the environment may change after ``huggingface_hub`` was imported, as in tests) and
turns a failure into one line that says *offline and not cached* apart from *not found*.

It imports nothing from ``huggingface_hub``: errors are recognised by their class names.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["HubOptions", "is_offline", "hub_cache_dir", "looks_like_hub_id", "looks_local", "describe_failure", "cache_snapshot_folder"]

_TRUE = {"1", "ON", "YES", "TRUE"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$|^[A-Za-z0-9][\w.-]*$")
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


def is_offline(local_files_only: bool | None = None) -> bool:
    """``local_files_only`` when given, else whether ``HF_HUB_OFFLINE`` is set (read now)."""
    if local_files_only is not None:
        return bool(local_files_only)
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE


def hub_cache_dir(cache_dir: str | Path | None = None) -> str:
    """The hub cache folder: ``cache_dir``, else ``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if cache_dir:
        return str(Path(cache_dir).expanduser())
    if os.environ.get("HF_HUB_CACHE"):
        return str(Path(os.environ["HF_HUB_CACHE"]).expanduser())
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return str(Path(home).expanduser() / "hub")


def looks_like_hub_id(source: str) -> bool:
    """``org/name`` (or a bare legacy ``name``) that is not an existing local path."""
    return bool(_HUB_ID.match(source)) and not Path(source).expanduser().exists()


def looks_local(source: str) -> bool:
    """An existing path, or a string that can only be a path (absolute, ``./``, ``~``, several slashes, a file suffix)."""
    if Path(source).expanduser().exists():
        return True
    return not looks_like_hub_id(source) or source.lower().endswith(SINGLE_FILE_SUFFIXES)


@dataclass
class HubOptions:
    """The hub options every ``from_pretrained`` takes, resolved at call time.

    Attributes:
        revision: branch, tag or commit of a hub source (None: the default branch).
        variant: weight variant such as ``"fp16"`` (files ``*.fp16.safetensors``).
        token: hub token for gated or private repositories (None: ``HF_TOKEN`` / the login).
        cache_dir: hub cache folder (None: ``HF_HUB_CACHE`` / ``HF_HOME``).
        local_files_only: never download (None: follows ``HF_HUB_OFFLINE``).
    """

    revision: str | None = None
    variant: str | None = None
    token: str | bool | None = None
    cache_dir: str | None = None
    local_files_only: bool | None = None

    @property
    def offline(self) -> bool:
        """True when nothing may be downloaded."""
        return is_offline(self.local_files_only)

    @property
    def cache(self) -> str:
        """The resolved hub cache folder."""
        return hub_cache_dir(self.cache_dir)

    def kwargs(self, variant: bool = True) -> dict[str, Any]:
        """Keyword arguments for ``from_pretrained`` / ``hf_hub_download`` (``variant`` only where it applies)."""
        out: dict[str, Any] = {"cache_dir": self.cache, "local_files_only": self.offline}
        if self.revision is not None:
            out["revision"] = self.revision
        if self.token is not None:
            out["token"] = self.token
        if variant and self.variant is not None:
            out["variant"] = self.variant
        return out


def _error_names(err: BaseException) -> set[str]:
    names: set[str] = set()
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        names.update(c.__name__ for c in type(err).__mro__)
        err = err.__cause__ or err.__context__
    return names


def describe_failure(err: BaseException, what: str, source: str, options: HubOptions, missing: str | None = None) -> str:
    """One line on why ``what`` (e.g. "the unet") could not be loaded from ``source``.

    Args:
        err: the exception raised by huggingface_hub, diffusers or transformers.
        what: the part being loaded, for the message.
        source: the hub id, folder or file asked for.
        options: the hub options used.
        missing: what a repository or folder lacked, for "not found" messages (e.g. ``unet/config.json``).
    """
    names = _error_names(err)
    text = str(err).strip()
    first = text.splitlines()[0][:200] if text else type(err).__name__
    at = f" at revision '{options.revision}'" if options.revision else ""
    if looks_local(source) and not looks_like_hub_id(source):
        path = Path(source).expanduser()
        if not path.exists():
            return f"{what}: no such folder or file: {path}; pass an existing local path or a hub id (org/name)"
        return f"{what}: could not load it from {path} ({first}); it must be a diffusers/transformers folder or a supported checkpoint file"
    if "GatedRepoError" in names:
        return (
            f"{what}: '{source}' is a gated repository: accept its licence on huggingface.co and pass a token "
            "(token option, HF_TOKEN, or `hf auth login`)"
        )
    if "RepositoryNotFoundError" in names:
        return f"{what}: no repository '{source}' on the hub (or it is private: pass a token); check the id or pass a local folder"
    if "RevisionNotFoundError" in names:
        return f"{what}: '{source}' has no revision '{options.revision}'; use an existing branch, tag or commit"
    if options.variant and f".{options.variant}." in text:
        where = f" (offline: looked in the cache at {options.cache})" if options.offline else ""
        return f"{what}: '{source}'{at} has no '{options.variant}' variant of its weights{where}; drop the variant option or use another revision"
    offline_miss = options.offline and re.search(r"cached files|offline|local_files_only|not in the cache", text, re.I)
    if "LocalEntryNotFoundError" in names or "OfflineModeIsEnabled" in names or offline_miss:
        if options.offline:
            why = "local_files_only=true" if options.local_files_only else "HF_HUB_OFFLINE is set"
            return (
                f"{what}: offline ({why}) and '{source}'{at} is not in the Hugging Face cache at {options.cache}; "
                f"download it once with network access (`hf download {source}`), point cache_dir / HF_HOME at a "
                "cache that has it, or pass a local folder"
            )
        return (
            f"{what}: could not reach the hub to download '{source}'{at} and it is not in the cache at {options.cache}; "
            "check the network (or HF_ENDPOINT), or set HF_HUB_OFFLINE=1 to use a cached copy"
        )
    if "EntryNotFoundError" in names or "RemoteEntryNotFoundError" in names:
        lacks = f" (no {missing})" if missing else ""
        return f"{what}: '{source}'{at} exists but is not the expected model{lacks}"
    if names & {"ConnectionError", "ConnectError", "Timeout", "TimeoutException", "ReadTimeout"}:
        return (
            f"{what}: could not reach the hub for '{source}' ({first}); check the network, or set HF_HUB_OFFLINE=1 "
            "to use a cached copy"
        )
    return f"{what}: could not load '{source}'{at} ({first})"


def cache_snapshot_folder(cache: str | Path, repo_id: str, revision: str, ref: str = "main") -> Path:
    """Create one snapshot of a model repository in a Hugging Face cache, for offline tests.

    Lays out ``<cache>/models--<org>--<name>/snapshots/<revision>/`` and the branch pointer
    ``refs/<ref>`` (the layout ``huggingface_hub`` reads). Save a model into the returned folder,
    point ``HF_HUB_CACHE`` at ``cache``, set ``HF_HUB_OFFLINE=1``, and loading ``repo_id`` (at
    ``ref`` or ``revision``) resolves to it without a network, as a user's cached download would.

    Args:
        cache: the hub cache folder (``HF_HUB_CACHE``).
        repo_id: ``org/name``.
        revision: the commit hash the snapshot stands for (40 hex characters).
        ref: the branch or tag that points to ``revision``.

    Returns:
        The snapshot folder (created).
    """
    folder = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    snapshot = folder / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / ref).write_text(revision)
    return snapshot
