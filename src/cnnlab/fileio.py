"""Atomic file writing: the one place cnnlab turns bytes into a file a user keeps.

A file written here is either complete or absent: the bytes go to a hidden temp file in the
same folder, are fsynced, and only then renamed over the target (then the folder is fsynced so
the rename survives a power cut). A failure (disk full, read-only folder, Ctrl-C) removes the
temp file and leaves any older version of the target untouched.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_text(folder / "a.txt", "hello").read_text()
'hello'
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from cnnlab.errors import CnnlabError


def _default_mode() -> int:
    """The mode ``open()`` would give a new file (0666 minus the umask); mkstemp uses 0600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where directories can't be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_prefix(path: Path) -> str:
    # The writer's pid is in the name so remove_stale_temps can tell a dead writer's leftovers.
    return f".{path.name}.tmp{os.getpid()}."


def atomic_write_bytes(
    path: str | os.PathLike, data: bytes | memoryview, *, make_parents: bool = False
) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path.

    Args:
        path: the file to (re)place.
        data: its whole new content.
        make_parents: create missing folders (run folders, caches) instead of refusing.

    Raises:
        CnnlabError: the folder does not exist (and ``make_parents`` is false).
        OSError: the write failed (disk full, read-only...); its ``filename`` is ``path``.
    """
    path = Path(path)
    folder = path.parent
    if make_parents:
        folder.mkdir(parents=True, exist_ok=True)
    elif folder.exists() and not folder.is_dir():
        raise CnnlabError(f"output folder is a file, not a folder: {folder}")
    elif not folder.is_dir():
        raise CnnlabError(f"output folder does not exist: {folder}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), dir=folder)
    except OSError as exc:  # read-only folder...: name the file we were asked to write
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except OSError as exc:  # disk full, quota...: say which file could not be written
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(folder)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, make_parents: bool = False) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"), make_parents=make_parents)


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete temp files left in ``folder`` by writers that were killed (SIGKILL, power cut).

    Only files whose writer process no longer exists are removed, so a live writer is never
    disturbed. Returns what was removed.
    """
    removed = []
    for tmp in Path(folder).glob(".*.tmp*"):
        pid = tmp.name.rpartition(".tmp")[2].partition(".")[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


# Largest file cnnlab reads whole (checkpoints, ONNX files, manifests, configs): a bound on the
# memory a stranger's file can take. Callers pass a smaller limit where one makes sense.
MAX_READ_BYTES = 1 << 30


def _file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def read_regular_file(
    path: str | os.PathLike,
    *,
    limit: int = MAX_READ_BYTES,
    what: str = "file",
    error: type[CnnlabError] = CnnlabError,
) -> bytes:
    """The bytes of a regular file (after following symlinks) of at most ``limit`` bytes.

    Devices (``/dev/zero``, ``/dev/urandom``), named pipes, sockets and directories are refused
    before anything is read, and so are files over ``limit``: a stranger's file cannot make cnnlab
    read without end, wait forever or fill the memory. The file is opened non-blocking and
    checked on its open descriptor, so it cannot be swapped for a pipe between check and read.

    Raises:
        error: one line naming ``what`` and the path.
        FileNotFoundError / PermissionError: as ``open()`` does (the CLI words them).
    """
    path = Path(path)
    kind = os.stat(path).st_mode  # sockets cannot even be opened: name them first
    if not stat.S_ISREG(kind):
        raise error(f"{what} is {_file_kind(kind)}, not a regular file: {path}")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} is {_file_kind(info.st_mode)}, not a regular file: {path}")
        if info.st_size > limit:
            raise error(f"{what} too large: {path} is {info.st_size:,} bytes (limit {limit:,})")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 24, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # the file grew while we read it
                raise error(f"{what} too large: {path} is over {limit:,} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def check_regular_file(
    path: str | os.PathLike,
    *,
    limit: int = MAX_READ_BYTES,
    what: str = "file",
    error: type[CnnlabError] = CnnlabError,
) -> Path:
    """:func:`read_regular_file`'s checks without reading: for libraries that open paths."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{what} is {_file_kind(info.st_mode)}, not a regular file: {path}")
    if info.st_size > limit:
        raise error(f"{what} too large: {path} is {info.st_size:,} bytes (limit {limit:,})")
    return path
