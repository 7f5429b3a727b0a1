"""Artefact directories: manifests, input fingerprints and atomic writes.

Every stage writes one directory with a ``manifest.json`` (stage, inputs and their fingerprints,
settings, counts, library version). Directories are built under a temporary sibling and renamed into
place, so a crash never leaves a half-written artefact, and a stage whose manifest matches its
inputs and settings can be skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bali import __version__
from bali.errors import BadInputError, BaliError

MANIFEST = "manifest.json"


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=False, default=str)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def fingerprint(path: str | Path) -> str:
    """A cheap, stable fingerprint of a file or directory: sizes and mtimes, or the manifest hash.

    For an artefact directory the fingerprint is the hash of its manifest, so a rebuilt upstream
    artefact invalidates everything downstream even when its files have the same sizes.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        manifest = path / MANIFEST
        if manifest.exists():
            digest.update(manifest.read_bytes())
            return digest.hexdigest()[:16]
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            stat = child.stat()
            digest.update(f"{child.relative_to(path)}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    elif path.exists():
        stat = path.stat()
        digest.update(f"{path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    else:
        digest.update(f"missing:{path}".encode())
    return digest.hexdigest()[:16]


def settings_hash(settings: Mapping[str, Any]) -> str:
    """Hash of a settings mapping, independent of key order."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def make_manifest(
    stage: str,
    inputs: Mapping[str, str | Path | list[str | Path] | None],
    settings: Mapping[str, Any],
    counts: Mapping[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """Build a manifest dict. ``inputs`` maps a role to a path (or list of paths)."""
    fingerprints: dict[str, Any] = {}
    for role, value in inputs.items():
        if value is None:
            continue
        if isinstance(value, list):
            fingerprints[role] = [{"path": str(v), "fingerprint": fingerprint(v)} for v in value]
        else:
            fingerprints[role] = {"path": str(value), "fingerprint": fingerprint(value)}
    return {
        "stage": stage,
        "bali_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "inputs": fingerprints,
        "settings": dict(settings),
        "settings_hash": settings_hash(settings),
        "counts": dict(counts),
        **extra,
    }


def read_manifest(directory: str | Path, stage: str | None = None) -> dict[str, Any]:
    """Read an artefact's manifest; a missing one (or one from another stage) is bad input."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise BadInputError(
            f"not a bali artefact directory (no {MANIFEST})"
            + (f"; expected the output of `{stage}`" if stage else ""),
            directory,
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadInputError(f"corrupt manifest: {exc.msg}", path, exc.lineno) from exc
    if stage is not None and manifest.get("stage") != stage:
        raise BadInputError(f"expected an artefact of stage '{stage}', found '{manifest.get('stage')}'", path)
    return manifest


def is_up_to_date(
    directory: str | Path,
    inputs: Mapping[str, str | Path | list[str | Path] | None],
    settings: Mapping[str, Any],
) -> bool:
    """True when ``directory`` holds a manifest built from the same inputs and settings."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        return False
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    expected = make_manifest("", inputs, settings, {})
    return (
        manifest.get("settings_hash") == expected["settings_hash"]
        and manifest.get("inputs") == expected["inputs"]
    )


def _process_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists on this machine (None, an unparsable owner, counts as dead)."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(parent: Path, prefix: str) -> None:
    """Delete the directories ``parent/PREFIX<pid>[-...]`` whose process no longer exists.

    Temporary directories carry their creator's pid after a fixed prefix, so the next run of a
    stage recognises what a killed run left behind; one from a run still going (a second terminal,
    the same process) is kept. Names without a pid come from older versions and are removed.
    """
    if not parent.is_dir():
        return
    for sibling in parent.iterdir():
        if not sibling.name.startswith(prefix) or not sibling.is_dir():
            continue
        owner = sibling.name[len(prefix) :].split("-", 1)[0]
        if not _process_alive(int(owner) if owner.isdecimal() else None):
            shutil.rmtree(sibling, ignore_errors=True)


@contextlib.contextmanager
def atomic_output_dir(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``out`` only if the block succeeds.

    ``out`` existing without ``overwrite`` is an error raised before any work starts. The old
    directory is moved aside and deleted only after the new one is in place. Both temporary names
    carry the pid, so the debris of a killed run is recognised and removed by the next run.
    """
    out = Path(out)
    for kind in ("tmp", "old"):  # what killed runs writing ``out`` left next to it
        remove_stale_temporaries(out.parent, f".{out.name}.{kind}-")
    if out.exists() and not overwrite:
        raise BadInputError("output directory exists; pass --overwrite to replace it", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError as exc:
        if old is not None:
            os.replace(old, out)
        raise BaliError(f"could not move {tmp} into place at {out}: {exc}") from exc
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
