"""Writing the settings and export files safely: atomically, privately, never with a secret in them.

A file is replaced so that it is either the old or the new one: temp file in the same
directory (0o600), fsync, ``os.replace`` (retried on Windows while another program briefly holds
the file), fsync of the directory. An unusable file is set aside under a new name, never
overwritten.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from runmonitor.domain.redact import secret_registry
from runmonitor.storage.settings.errors import SettingsError
from runmonitor.storage.settings.model import Profile

# The settings store's logger: the messages read as before wherever the code sits.
log = logging.getLogger("runmonitor.storage.settings.store")

FILE_MODE = 0o600

# Windows: antivirus, indexers and sync clients briefly lock files (WinError 5/32/33). About 2 s in all.
_REPLACE_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.6, 0.65)
_IS_WINDOWS = os.name == "nt"


def fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory
        pass
    finally:
        os.close(fd)


def _replace(source: Path, target: Path) -> None:
    """``os.replace``, retried on Windows while another program briefly holds the file."""
    for delay in (*_REPLACE_DELAYS, None):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if not _IS_WINDOWS or delay is None:
                raise
            time.sleep(delay)


def write_temp(target: Path, data: bytes) -> Path:
    """``data`` in a new private file beside ``target``, flushed and fsync-ed."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            if os.name == "posix":
                os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with suppress(OSError):
            temp.unlink()
        raise
    return temp


def commit(temp: Path, target: Path) -> None:
    try:
        _replace(temp, target)
    except BaseException:
        with suppress(OSError):
            temp.unlink()
        raise
    fsync_dir(target.parent)


def atomic_write(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` (mode 0o600) so that it is either the old or the new file."""
    commit(write_temp(target, data), target)


def _timestamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def aside_path(path: Path, label: str) -> Path:
    """A name beside ``path`` that does not exist yet: ``<name>.<label>-<ts>``, then ``-2``, ``-3``…"""
    base = path.with_name(f"{path.name}.{label}-{_timestamp()}")
    candidate, n = base, 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def quarantine(path: Path, *, keep_original: bool = False) -> Path:
    """Move (or copy) ``path`` aside as ``<name>.corrupt-<ts>``; an existing file is never overwritten."""
    while True:
        target = aside_path(path, "corrupt")
        if keep_original:
            data = path.read_bytes()
            try:
                with open(target, "xb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            except FileExistsError:
                continue
        elif os.name == "posix":
            try:
                os.link(path, target)  # fails rather than overwrite
            except FileExistsError:
                continue
            except OSError:  # no hard links on this file system
                os.rename(path, target)
            else:
                path.unlink()
        else:
            try:
                os.rename(path, target)  # Windows: refuses to overwrite
            except FileExistsError:
                continue
        fsync_dir(path.parent)
        return target


def safe_bytes(document: dict[str, Any], what: str) -> bytes:
    """JSON for ``document``, with any known secret value scrubbed (logged, never expected)."""
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    scrubbed = secret_registry.scrub(text)
    if scrubbed != text:
        log.error("a known secret value was found in %s and masked before writing", what)
    return scrubbed.encode("utf-8")


def check_no_secrets(profiles: Iterable[Profile]) -> None:
    for index, profile in enumerate(profiles):
        leaked = sorted(set(profile.secret_fields()) & set(profile.connection))
        if leaked:
            raise SettingsError(
                f"profiles.{index}.connection: refusing to write secret field(s) {', '.join(leaked)} "
                f"of profile {profile.name!r}; secrets belong in the keyring"
            )
