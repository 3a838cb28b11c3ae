"""A destination file written in full or not at all, and nothing left behind if killed.

:func:`output_file` yields a binary file to write the result into; the
destination appears (or is replaced) only when the ``with`` block completes.

- On Linux the data goes into an *anonymous* file in the destination's folder
  (``O_TMPFILE``): it has no name until it is linked into place at the end, so
  a process killed at any moment, even by ``SIGKILL``, leaves nothing behind;
  the kernel frees its blocks.
- Where that is not available (macOS, Windows, file systems without
  ``O_TMPFILE``), it goes into a named temporary file beside the destination,
  ``.<name>.xpit-<host>-<pid>-<token>.tmp``, removed on any error or interrupt.
  Only a killed process can leave one behind; on POSIX systems the next run for
  the same destination on the same host removes those of processes that no
  longer run (two hosts or containers that share a host name and a folder
  should not write the same destination at once). On Windows such a leftover
  must be removed by hand.

A write that fails because the disk is full, a quota or the file size limit is
reached raises an ``OSError`` (with the original ``errno``) that names the
function, the destination, the cause, and says the destination is untouched.
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

_NO_SPACE = {
    errno.ENOSPC: "no space is left on the device (ENOSPC)",
    errno.EFBIG: "the file size limit was reached (EFBIG; see ulimit -f)",
    getattr(errno, "EDQUOT", -1): "the disk quota is exceeded (EDQUOT)",
}


def _leftover_prefix(dst: Path) -> str:
    return f".{dst.name}.xpit-{socket.gethostname()}-"


def _named_temporary(dst: Path) -> Path:
    """A fresh temporary name beside ``dst``: the pid (for clean-up) and a token, so that two
    threads writing the same destination never collide."""
    return dst.with_name(f"{_leftover_prefix(dst)}{os.getpid()}-{secrets.token_hex(4)}.tmp")


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # it exists but belongs to someone else
        return False
    return False


def remove_leftovers(dst: Path) -> list[Path]:
    """Remove the named temporary files that killed processes on this host left for ``dst``."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return []
    prefix = _leftover_prefix(dst)
    removed = []
    try:
        names = os.listdir(dst.parent)
    except OSError:
        return []
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid = name[len(prefix):-len(".tmp")].partition("-")[0]
        if pid.isascii() and pid.isdigit() and int(pid) != os.getpid() and (
                _process_is_gone(int(pid))):
            path = dst.parent / name
            try:
                path.unlink(missing_ok=True)
            except OSError:  # not ours to remove (another user's, in a shared folder)
                continue
            removed.append(path)
    return removed


def _open_anonymous(folder: Path) -> int | None:
    """A file descriptor of a nameless file in ``folder``, or None where that is unsupported."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not os.path.isdir("/proc/self/fd"):  # linking it needs /proc
        return None
    try:
        return os.open(folder, flag | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return None  # an old kernel or a file system without O_TMPFILE
        raise


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
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


def _link_into_place(fd: int, dst: Path, overwrite: bool) -> None:
    """Give the anonymous file ``fd`` the name ``dst``."""
    source = f"/proc/self/fd/{fd}"
    # With a folder descriptor, os.link calls linkat(..., AT_SYMLINK_FOLLOW), which links
    # the file /proc/self/fd/N stands for (plain link() would link the symlink itself).
    folder = os.open(dst.parent, os.O_RDONLY)
    try:
        if not overwrite:  # link() never replaces: a dst that appeared meanwhile is kept
            os.link(source, dst.name, dst_dir_fd=folder, follow_symlinks=True)
            return
        named = _named_temporary(dst)
        os.link(source, named.name, dst_dir_fd=folder, follow_symlinks=True)
        try:
            os.replace(named.name, dst.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            named.unlink(missing_ok=True)
            raise
    finally:
        os.close(folder)


def _place_named(named: Path, dst: Path, overwrite: bool) -> None:
    """Give the named temporary file the name ``dst``."""
    if overwrite:
        os.replace(named, dst)
        return
    try:
        os.link(named, dst)  # link() never replaces: a dst that appeared meanwhile is kept
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links
        if dst.exists():
            raise FileExistsError(errno.EEXIST, "the destination appeared meanwhile",
                                  str(dst)) from None
        os.replace(named, dst)
        return
    named.unlink()


def _explained(where: str, dst: Path, exc: OSError, overwrite: bool) -> OSError:
    """``exc`` with a message naming the function, the destination, the cause and its state."""
    if isinstance(exc, FileExistsError):
        error: OSError = FileExistsError(
            f"{where}: {str(dst)!r} appeared while the output was written and is kept; nothing "
            "was written over it (pass overwrite=True to replace it)")
        error.errno = exc.errno
        return error
    if exc.errno in _NO_SPACE:
        cause = _NO_SPACE[exc.errno]
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        cause = ("the file system is read-only" if exc.errno == errno.EROFS else
                 f"permission denied in {str(dst.parent)!r}")
    else:
        return exc
    state = "replaced" if overwrite and dst.exists() else "created"
    error = type(exc)(f"{where}: cannot write {str(dst)!r}: {cause}; the destination was not "
                      f"{state} and no partial output was left")
    error.errno = exc.errno
    return error


@contextmanager
def output_file(where: str, dst: Path, overwrite: bool) -> Iterator[IO[bytes]]:
    """A binary file that becomes ``dst`` when the block completes; see the module docstring."""
    remove_leftovers(dst)
    named = None  # the named temporary file, once created
    try:
        fd = _open_anonymous(dst.parent)
        if fd is None:
            path = _named_temporary(dst)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                         | getattr(os, "O_BINARY", 0), 0o666)
            named = path
        with open(fd, "wb") as w:
            yield w
            w.flush()
            os.fsync(w.fileno())
            if named is None:
                _link_into_place(w.fileno(), dst, overwrite)
        if named is not None:
            _place_named(named, dst, overwrite)
    except BaseException as exc:  # an error, a full disk or an interrupt: leave nothing behind
        if named is not None:
            named.unlink(missing_ok=True)
        if isinstance(exc, OSError) and (explained := _explained(where, dst, exc, overwrite)
                                         ) is not exc:
            raise explained from exc
        raise
    _fsync_folder(dst.parent)
