"""Official weights by name: ``hf://OWNER/REPO/PATH`` resolved through the Hugging Face hub cache.

A reference names a file (or a folder) inside a model repository on huggingface.co::

    hf://Audio-AGI/AudioSep/checkpoint/audiosep_base_4M_steps.ckpt      # a file, main branch
    hf://Audio-AGI/AudioSep/checkpoint/audiosep_base_4M_steps.ckpt@v1   # at a revision (branch, tag, commit)
    hf://Audio-AGI/AudioSep@v1/checkpoint/audiosep_base_4M_steps.ckpt   # the same (huggingface_hub's own spelling)
    hf://FacebookAI/roberta-base                                         # a whole repository, as a folder
    FacebookAI/roberta-base                                              # the same, where a folder is expected

Files are fetched by ``huggingface_hub`` (``hf_hub_download`` / ``snapshot_download``) into its
standard cache, ``$HF_HUB_CACHE`` or ``$HF_HOME/hub`` (default ``~/.cache/huggingface/hub``), laid out as
``models--OWNER--REPO/{blobs, snapshots/<commit>, refs/main}``; a cached file is read from there
without network. ``HF_HUB_OFFLINE=1`` (or ``TRANSFORMERS_OFFLINE=1``) forbids downloads: a
reference not in the cache is then a ``SepkitError`` naming the file, the cache and the fix. The
environment is read at each call, not when a module is imported.

huggingface_hub is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from sepkit.errors import SepkitError

SCHEME = "hf://"
# Files a model folder needs (configuration, tokenizer, weights), without the TensorFlow, Flax, ONNX,
# Rust and Core ML copies that repositories such as roberta-base also hold.
FOLDER_PATTERNS = ("*.json", "*.txt", "*.model", "*.safetensors")
FALLBACK_WEIGHT_PATTERNS = ("pytorch_model*.bin",)  # only when a repository has no safetensors weights
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a hub user, organisation or repository name
_TRUE = {"1", "ON", "YES", "TRUE"}  # huggingface_hub's spelling of a true environment variable
EXAMPLE = "hf://Audio-AGI/AudioSep/checkpoint/audiosep_base_4M_steps.ckpt"


@dataclass(frozen=True)
class HubReference:
    """A parsed ``hf://`` reference: ``repo_id`` "OWNER/REPO", ``path`` inside it ("" for the whole
    repository), ``revision`` (None for the default branch)."""

    repo_id: str
    path: str = ""
    revision: Optional[str] = None

    def __str__(self) -> str:
        inner = f"/{self.path}" if self.path else ""
        at = f"@{self.revision}" if self.revision else ""
        return f"{SCHEME}{self.repo_id}{inner}{at}"

    def download_command(self) -> str:
        """The ``hf`` command line (huggingface_hub's CLI) that puts this reference into the cache."""
        revision = f" --revision {self.revision}" if self.revision else ""
        if not self.path:
            return f"hf download {self.repo_id}{revision}"
        return f"hf download {self.repo_id} {self.path}{revision}"


def is_hub_reference(value: Any) -> bool:
    """True for a string starting with ``hf://`` (a ``Path`` never is one: ``Path`` folds ``//``)."""
    return isinstance(value, str) and value.startswith(SCHEME)


def looks_like_repo_id(value: Any) -> bool:
    """True for a bare ``OWNER/REPO`` ("google/flan-t5-base") that is not an existing local path."""
    if not isinstance(value, str) or value.count("/") != 1 or Path(value).expanduser().exists():
        return False
    owner, name = value.split("/")
    return bool(_NAME.match(owner) and _NAME.match(name)) and ".." not in value


def parse_hub_reference(text: str) -> HubReference:
    """``hf://OWNER/REPO[/PATH][@REVISION]`` (or ``hf://OWNER/REPO@REVISION[/PATH]``) -> ``HubReference``.

    ``SepkitError`` for a malformed reference (no owner or repository, empty or ``..`` path parts).
    """
    if not is_hub_reference(text):
        raise SepkitError(f"{text!r} is not a hub reference; write {SCHEME}OWNER/REPO/FILE (e.g. {EXAMPLE})")
    rest = text[len(SCHEME) :]
    parts = rest.split("/")
    revision = None
    if len(parts) >= 2 and "@" in parts[1]:  # hf://OWNER/REPO@REV/PATH
        parts[1], revision = parts[1].split("@", 1)
        rest = "/".join(parts)
    elif "@" in rest:  # hf://OWNER/REPO/PATH@REV
        rest, revision = rest.rsplit("@", 1)
    if revision is not None and not revision.strip():
        raise _malformed(text, "the revision after '@' is empty")
    parts = rest.split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise _malformed(text, "it needs an owner and a repository")
    owner, name, inner = parts[0], parts[1], parts[2:]
    for word in (owner, name):
        if not _NAME.match(word) or ".." in word:
            raise _malformed(text, f"{word!r} is not a hub name (letters, digits, '-', '_', '.')")
    if inner and inner[-1] == "":
        inner = inner[:-1]  # hf://OWNER/REPO/folder/ names the folder
    if any(part in ("", ".", "..") for part in inner):
        raise _malformed(text, "its path inside the repository has an empty, '.' or '..' part")
    return HubReference(f"{owner}/{name}", "/".join(inner), revision)


def _malformed(text: str, why: str) -> SepkitError:
    return SepkitError(
        f"malformed hub reference {text!r}: {why}; write {SCHEME}OWNER/REPO/PATH/IN/REPO[@REVISION] (e.g. {EXAMPLE})"
    )


def hub_cache_dir() -> Path:
    """The hub cache huggingface_hub uses: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
    ``$XDG_CACHE_HOME/huggingface/hub`` or ``~/.cache/huggingface/hub`` (read from the environment now)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
    )
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def hub_offline() -> bool:
    """True if ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set to 1/ON/YES/TRUE (read now)."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in _TRUE


def resolve_file(reference: str, what: str = "file") -> Path:
    """The local path (in the hub cache) of the file ``hf://OWNER/REPO/PATH[@REV]``, downloaded if needed.

    ``what`` names the file in errors ("checkpoint", "CLAP checkpoint"). Every failure (offline and not
    cached, no connection, repository / revision / file not found, a gated repository) is a ``SepkitError``.
    """
    ref = parse_hub_reference(reference)
    if not ref.path:
        raise SepkitError(
            f"{what} {reference} names a repository, not a file; add the file's path in it (e.g. {EXAMPLE})"
        )
    from huggingface_hub import hf_hub_download

    cache = hub_cache_dir()
    try:
        local = hf_hub_download(
            ref.repo_id, ref.path, revision=ref.revision, cache_dir=str(cache), local_files_only=hub_offline()
        )
    except Exception as exc:  # huggingface_hub raises many types; each becomes a user error
        raise _hub_error(exc, ref, what, cache) from None
    return Path(local)


def resolve_folder(reference: str, what: str = "folder", allow_patterns: Optional[Sequence[str]] = None) -> Path:
    """The local folder (a snapshot in the hub cache) of ``hf://OWNER/REPO[/SUBFOLDER][@REV]`` or ``OWNER/REPO``.

    Downloads only the files matching ``allow_patterns`` (default ``FOLDER_PATTERNS``: configuration,
    tokenizer and safetensors weights; ``pytorch_model*.bin`` too when the repository has no safetensors).
    With ``HF_HUB_OFFLINE=1`` the cached snapshot is returned as it is. Failures are ``SepkitError``.
    """
    text = reference if is_hub_reference(reference) else f"{SCHEME}{reference}"
    ref = parse_hub_reference(text)
    patterns = list(allow_patterns or FOLDER_PATTERNS)
    if ref.path:
        patterns = [f"{ref.path}/{p}" for p in patterns]
    folder = _snapshot(ref, patterns, what)
    if allow_patterns is None and not hub_offline() and not _has_weights(folder / ref.path):
        folder = _snapshot(ref, [f"{ref.path}/{p}" if ref.path else p for p in FALLBACK_WEIGHT_PATTERNS], what)
    target = folder / ref.path if ref.path else folder
    if not target.is_dir():
        raise SepkitError(
            f"{what} {ref}: the repository {ref.repo_id} has no folder {ref.path!r} (cached snapshot {folder}); "
            "check the path on huggingface.co"
        )
    return target


def _snapshot(ref: HubReference, patterns: list[str], what: str) -> Path:
    from huggingface_hub import snapshot_download

    cache = hub_cache_dir()
    try:
        local = snapshot_download(
            ref.repo_id, revision=ref.revision, cache_dir=str(cache), local_files_only=hub_offline(),
            allow_patterns=patterns,
        )  # fmt: skip
    except Exception as exc:  # huggingface_hub raises many types; each becomes a user error
        raise _hub_error(exc, ref, what, cache) from None
    return Path(local)


def _has_weights(folder: Path) -> bool:
    """True if ``folder`` holds safetensors or torch ``.bin`` weights."""
    return folder.is_dir() and (any(folder.glob("*.safetensors")) or any(folder.glob("*.bin")))


def local_file(path: Any, what: str = "file") -> Any:
    """``path`` itself, or the cached local file of an ``hf://`` reference (see ``resolve_file``)."""
    return resolve_file(path, what) if is_hub_reference(path) else path


def local_folder(path: Any, what: str = "folder", allow_patterns: Optional[Sequence[str]] = None) -> Any:
    """``path`` itself, or the cached snapshot folder of an ``hf://`` reference or a bare ``OWNER/REPO``
    that is not a local path (see ``resolve_folder``)."""
    if is_hub_reference(path) or looks_like_repo_id(path):
        return resolve_folder(path, what, allow_patterns)
    return path


def _hub_error(exc: Exception, ref: HubReference, what: str, cache: Path) -> SepkitError:
    """A one-line ``SepkitError`` for a failed hub download: what is missing, where it was looked for, the fix."""
    from huggingface_hub import errors

    name = f"{what} {ref}"
    where = f"{ref.path} of {ref.repo_id}" if ref.path else f"the repository {ref.repo_id}"
    at = f" at revision {ref.revision}" if ref.revision else ""
    detail = _first_line(exc)
    if isinstance(exc, errors.LocalEntryNotFoundError):
        if hub_offline():
            return SepkitError(
                f"{name}: {where}{at} is not in the Hugging Face cache {cache} and downloads are off "
                f"(offline mode, HF_HUB_OFFLINE=1); run once online, or `{ref.download_command()}` on a machine "
                "with network (with the same HF_HOME / HF_HUB_CACHE), or unset HF_HUB_OFFLINE"
            )
        return SepkitError(
            f"{name}: {where}{at} is not in the Hugging Face cache {cache} and huggingface.co could not be "
            f"reached ({detail}); check the connection (or HF_ENDPOINT), or fetch it with `{ref.download_command()}`"
        )
    if isinstance(exc, errors.GatedRepoError):
        return SepkitError(
            f"{name}: the repository {ref.repo_id} is gated; accept its terms on https://huggingface.co/{ref.repo_id} "
            "and log in (`hf auth login` or HF_TOKEN)"
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        return SepkitError(
            f"{name}: the repository {ref.repo_id} was not found on huggingface.co (or it is private); "
            "check the OWNER/REPO spelling, or log in (`hf auth login` or HF_TOKEN) for a private one"
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return SepkitError(
            f"{name}: the repository {ref.repo_id} has no revision {ref.revision!r}; give an existing branch, "
            "tag or commit after '@', or none for the main branch"
        )
    if isinstance(exc, errors.EntryNotFoundError):
        return SepkitError(
            f"{name}: the repository {ref.repo_id}{at} has no file {ref.path!r}; check the path on "
            f"https://huggingface.co/{ref.repo_id}/tree/{ref.revision or 'main'}"
        )
    if isinstance(exc, errors.HFValidationError):
        return _malformed(str(ref), detail)
    if isinstance(exc, OSError):
        return SepkitError(
            f"{name}: could not be stored in the Hugging Face cache {cache} ({detail}); free space or "
            "fix its permissions, or point HF_HOME / HF_HUB_CACHE at a writable folder"
        )
    return SepkitError(f"{name}: download from huggingface.co failed ({detail}); retry, or fetch it with "
                       f"`{ref.download_command()}`")  # fmt: skip


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


__all__ = [
    "HubReference",
    "hub_cache_dir",
    "hub_offline",
    "is_hub_reference",
    "local_file",
    "local_folder",
    "looks_like_repo_id",
    "parse_hub_reference",
    "resolve_file",
    "resolve_folder",
]
