"""Writing a file so that a crash leaves the old one or the new one, and the user's settings stay.

`atomic_write` is how Wiregrad writes every file a user keeps: documents, weights, exports,
plots, recovery files. It writes a temporary file beside the target, fsyncs it and renames it
over the target, then fsyncs the folder. Around that core it keeps what the user set on the
file (docs/engine.md, "Saving"):

- a symbolic link stays a link: the file it points to gets the new content;
- the mode, and the owner and group where the system lets us set them, are the old file's;
- a file without write permission is refused, even for root, whose `os.access` always says yes;
- a pipe or a device (`-o /dev/stdout`) is written to directly: there is nothing to rename over.

Temporary files are named `.NAME.wgtmp-PID-RANDOM`, so that the next successful save of NAME
can tell its own leftovers (their process is gone, or they are over an hour old) from a save
that another process is still making. Every OSError comes out as a SaveError that says what
happened in words and names the file.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import time
from pathlib import Path

from .errors import GraphError

TEMP_MARK = ".wgtmp-"
STALE_AFTER_S = 3600.0
# A name has at most 255 bytes; the temporary file's adds 30 to the target's.
_STEM_BYTES = 200
_OUR_TEMP = re.compile(r"(\d+)-[0-9a-f]{8}")
# How earlier versions named their temporary files, `.NAME.1a2b3c4d.tmp`: removed by age.
_OLD_TEMP = re.compile(r"[0-9a-f]{8}\.tmp")


class SaveError(GraphError, OSError):
    """A file could not be written. The message names the file and says what happened in words;
    `errno` and `filename` are there as on any OSError (callers that catch OSError still do)."""

    def __init__(self, path, code: int | None, words: str):
        super().__init__(f"{path}: cannot save: {words}")
        self.errno = code
        self.filename = str(path)


# What an OSError means for a save, by errno name (not every system has every one), said so
# that the user knows what to do next. {folder} is the folder the file is written in.
_WORDS = {
    "ENOSPC": "the disk is full; free some space and save again",
    "EDQUOT": "the disk is full for you (your quota is used up); free some space and save again",
    "EACCES": "permission denied (you may not write in the folder {folder})",
    "EPERM": "permission denied (the file or the folder {folder} is protected)",
    "EROFS": "read-only file system; save somewhere else",
    "ENOENT": "the folder {folder} does not exist",
    "ENOTDIR": "a part of the path is not a folder",
    "EISDIR": "that is a folder, not a file",
    "ENAMETOOLONG": "the name is too long for this file system",
    "ELOOP": "the path goes round a loop of symbolic links",
    "EIO": "input/output error: the disk may be failing, or was removed",
    "EFBIG": "the file is too large for this file system",
    "EMFILE": "too many files are open; close some programs and save again",
    "ENFILE": "too many files are open; close some programs and save again",
    "EBUSY": "the file is busy",
    "ETXTBSY": "the file is busy",
}
_WORDS_BY_CODE = {getattr(errno, name): words for name, words in _WORDS.items()
                  if hasattr(errno, name)}


def _words(exc: OSError, path: Path) -> str:
    words = _WORDS_BY_CODE.get(exc.errno)
    if words is None:
        return (exc.strerror or str(exc) or type(exc).__name__).lower()
    # The folder the file goes in is the one its symbolic links lead to.
    return words.format(folder=Path(os.path.realpath(path)).parent)


def atomic_write(path, data: bytes) -> None:
    """Replace the file at `path` by `data`: a crash at any moment leaves the old file or the
    new one, never half of one. Raises SaveError."""
    path = Path(path)
    try:
        _write(path, data)
    except (SaveError, BrokenPipeError):
        raise  # a pipe's reader that went away is not a failed save: the caller decides
    except OSError as exc:
        raise SaveError(path, exc.errno, _words(exc, path)) from exc


def _write(path: Path, data: bytes) -> None:
    try:
        old = os.stat(path)  # through symbolic links: what a plain write would reach
    except FileNotFoundError:
        old = None
    if old is not None and stat.S_ISDIR(old.st_mode):
        raise SaveError(path, errno.EISDIR, "that is a folder, not a file")
    if old is not None and not stat.S_ISREG(old.st_mode):
        _write_in_place(path, data)
        return
    if old is not None and not _may_write(path, old):
        raise SaveError(path, errno.EACCES, "the file is read-only (no write permission); "
                        "make it writable (chmod u+w) or save under another name")
    target = Path(os.path.realpath(path))
    tmp, fd = _create_temp(target, old)
    try:
        try:
            if old is not None:
                _keep_owner_and_mode(fd, old)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_folder(target.parent)
    remove_stale_temps(target)


def _may_write(path: Path, old: os.stat_result) -> bool:
    """Whether the permission bits let us write the file. Root may write anything, so for root
    the question is whether anyone may: a file nobody may write was made read-only on purpose."""
    if not hasattr(os, "geteuid"):
        return os.access(path, os.W_OK)  # Windows: the read-only attribute
    uid = os.geteuid()
    if uid == 0:
        return bool(old.st_mode & 0o222)
    if old.st_uid == uid:
        bit = stat.S_IWUSR
    elif old.st_gid == os.getegid() or old.st_gid in os.getgroups():
        bit = stat.S_IWGRP
    else:
        bit = stat.S_IWOTH
    # An access-control list can grant what the bits do not; the kernel knows.
    return bool(old.st_mode & bit) or os.access(path, os.W_OK)


def temp_prefix(target: Path) -> str:
    """The start of the names of `target`'s temporary files, in the same folder."""
    stem = os.fsdecode(os.fsencode(target.name)[:_STEM_BYTES])
    return f".{stem}{TEMP_MARK}"


def _create_temp(target: Path, old) -> tuple:
    # Until it has the old file's mode, the new content is readable by its owner only: a
    # private file's next version must not be world-readable even for a moment. A new file
    # gets what an ordinary write gives, 0666 less the umask.
    mode = 0o600 if old is not None else 0o666
    prefix = temp_prefix(target)
    while True:
        tmp = target.with_name(f"{prefix}{os.getpid()}-{secrets.token_hex(4)}")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue


def _keep_owner_and_mode(fd: int, old: os.stat_result) -> None:
    # The owner first: changing it clears set-user-ID bits that the mode then puts back.
    if hasattr(os, "fchown"):
        for uid, gid in ((old.st_uid, old.st_gid), (-1, old.st_gid)):
            try:
                os.fchown(fd, uid, gid)
                break
            except PermissionError:
                continue  # only root may give a file away; a group we belong to may still do
    try:
        os.fchmod(fd, stat.S_IMODE(old.st_mode))
    except (PermissionError, NotImplementedError, AttributeError):
        pass  # a file system without modes: the file stays private (0600), the safe side


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _write_in_place(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable. Some file systems cannot open or sync a folder; the
    # data is safe on disk anyway, only the rename might be replayed after a power cut.
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


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def remove_stale_temps(target: Path) -> int:
    """Remove the temporary files a killed save of `target` left; return how many. A temporary
    file is stale when the process in its name is gone or it is over an hour old, so a save
    that another process is making right now keeps its file."""
    prefix, now, removed = temp_prefix(target), time.time(), 0
    old_prefix = f".{target.name}."
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if name.startswith(prefix):
            match = _OUR_TEMP.fullmatch(name[len(prefix):])
            if not match:
                continue
            stale = not _process_lives(int(match.group(1))) or _older_than(entry, now)
        elif name.startswith(old_prefix) and _OLD_TEMP.fullmatch(name[len(old_prefix):]):
            stale = _older_than(entry, now)  # no process id in the name: by age only
        else:
            continue
        if stale:
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
    return removed


def _older_than(entry: os.DirEntry, now: float) -> bool:
    try:
        return now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
    except OSError:
        return False


def _process_lives(pid: int) -> bool:
    if pid <= 0 or os.name == "nt":
        return True  # kill(0) signals a group; on Windows kill ends the process: age decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OverflowError:
        return False  # no process has such a number
    except PermissionError:
        return True  # it lives, as another user
    return True
