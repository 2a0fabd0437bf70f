"""One writer per run folder: an OS-level lock taken before anything is written into a folder.

``texkit train`` (fresh or ``--resume``) and ``texkit generate`` hold the lock of their output
folder for as long as they write it. The lock is ``fcntl.flock`` (an exclusive, non-blocking
advisory lock) on a lock file beside the folder, ``<parent>/.<name>.lock``; beside, not inside,
because ``generate`` replaces its folder as a whole by renaming. The file holds the holder's pid,
host, start time and command, so a second process can say who holds the folder.

The kernel releases a ``flock`` when its holder exits, however it exits (SIGKILL and power loss of
the holder included). A lock file left behind by a holder that died is therefore *stale*: it
exists but nobody holds its lock. It is taken over with a notice naming the dead holder. The
holder removes the file when it is done (removed while still locked, so no other process can
lock a file that is about to disappear; a process that locked the old file checks that the path
still names the file it locked and tries again otherwise).

The lock is re-entrant within a process: the ``train`` command and `texkit.training.train` both
take it, the inner one sees that this process already holds it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from texkit.errors import TexkitError

try:  # POSIX; elsewhere the folder is not locked (said in a notice)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunFolderInUseError", "LockHolder", "lock_path", "hold_folder", "holds_folder"]


class RunFolderInUseError(TexkitError):
    """Another process holds the lock of the run or output folder."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a folder's lock, as its lock file says."""

    pid: int | None
    host: str
    since: str
    command: str

    def describe(self) -> str:
        """``pid 123 on host h since 2025-01-02 10:11:12 (texkit train a.toml)``."""
        pid = f"pid {self.pid}" if self.pid is not None else "an unknown process"
        since = f" since {self.since}" if self.since else ""
        command = f" ({self.command})" if self.command else ""
        return f"{pid} on host {self.host or 'unknown'}{since}{command}"


_HELD: set[Path] = set()  # the lock files this process holds


def lock_path(folder: str | Path) -> Path:
    """The lock file of ``folder``: ``<parent>/.<name>.lock`` (the folder's absolute path)."""
    folder = Path(os.path.abspath(folder))
    return folder.parent / f".{folder.name}.lock"


def holds_folder(folder: str | Path) -> bool:
    """Whether this process holds the lock of ``folder``."""
    return lock_path(folder) in _HELD


def _read_holder(fd: int) -> LockHolder | None:
    """The holder recorded in an open lock file (None when it is empty or unreadable)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 65536).decode("utf-8", errors="replace") or "null")
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    pid = data.get("pid")
    return LockHolder(pid if isinstance(pid, int) else None, str(data.get("host", "")), str(data.get("since", "")), str(data.get("command", "")))


def _write_holder(fd: int) -> None:
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(["texkit", *sys.argv[1:]]) if sys.argv and "texkit" in Path(sys.argv[0]).name else " ".join(sys.argv),
    }
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(me) + "\n").encode("utf-8"))
    os.fsync(fd)


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the open file ``fd`` (the holder before us may have removed it)."""
    try:
        mine, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def _acquire(path: Path, folder: Path, notify: Callable[[str], None] | None) -> int | None:
    """Lock ``path``; returns the open descriptor (None where the file system cannot lock).

    Raises:
        RunFolderInUseError: another live process holds the lock.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                holder = _read_holder(fd)
                os.close(fd)
                who = holder.describe() if holder is not None else "another process (it has not written its name yet)"
                raise RunFolderInUseError(
                    f"{folder} is in use by texkit {who}; wait until it finishes or stop it, or set output.dir (or --out) to another folder"
                ) from None
            os.close(fd)  # e.g. ENOLCK/EOPNOTSUPP on a file system without locks
            if notify is not None:
                notify(f"cannot lock {path} ({err.strerror}); nothing stops a second texkit from writing {folder} at the same time")
            return None
        if not _same_file(fd, path):  # the previous holder removed the file after we opened it: lock the new one
            os.close(fd)
            continue
        stale = _read_holder(fd)
        if stale is not None and notify is not None:
            notify(f"took over the lock of {folder} left by {stale.describe()}, which is no longer running")
        _write_holder(fd)
        return fd


@contextlib.contextmanager
def hold_folder(folder: str | Path, notify: Callable[[str], None] | None = None, enabled: bool = True) -> Iterator[None]:
    """Hold the lock of ``folder`` (a run or output folder) for the body; re-entrant in one process.

    Creates the folder's parent when it is missing (the lock file lives there); removes the lock file,
    and the parents it created when they are left empty, when the body ends.

    Args:
        folder: the run or output folder (it need not exist yet).
        notify: receives one-line notices (a stale lock taken over, a file system without locks).
        enabled: False: do nothing (ranks other than 0 of a distributed run, which write nothing).

    Raises:
        RunFolderInUseError: another process holds the lock (one line naming it: pid, host, since, command).
    """
    path = lock_path(folder)
    if not enabled or path in _HELD or fcntl is None:  # nothing to lock, or an outer call holds it
        yield
        return
    missing = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path, Path(os.path.abspath(folder)), notify)
    _HELD.add(path)
    try:
        yield
    finally:
        _HELD.discard(path)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)  # while still locked: nobody can take a file that is about to go
            os.close(fd)
        for made in missing:  # parents made for the lock file and left empty (a failed start)
            with contextlib.suppress(OSError):
                made.rmdir()
