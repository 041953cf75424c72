"""What a failure from the user's files, disk, memory or pipe is, said in words.

The command line catches what its commands raise. A GraphError is already a message. The
failures below come from outside Wiregrad: a full disk, a file without permission, a document
too big for memory or nested too deep for the stack. Each is told as what it is, naming the
path where the system gave one, and otherwise what was being done to which document. What is
left ("internal error") is a bug of ours.
"""

from __future__ import annotations

import errno
import zipfile

# errno -> what it means for the user, and what to do where there is something to do.
OS_PROBLEMS = {
    errno.ENOSPC: "disk is full (no space left on the device); free some space and try again",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "no such file or folder",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOTDIR: "part of the path is a file, not a folder",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.EMFILE: "too many files are open; close some programs and try again",
    errno.ENFILE: "too many files are open on this system; try again later",
    errno.EIO: "input/output error (a failing disk, or a network share that went away)",
    errno.EFBIG: "the file is too large for this file system",
}
if hasattr(errno, "EDQUOT"):
    OS_PROBLEMS[errno.EDQUOT] = "disk quota exceeded; free some space and try again"

DOING = {"check": "checking", "train": "training", "export": "exporting", "predict": "predicting"}


def describe(error: BaseException, command: str, file: str) -> str | None:
    """One line saying what went wrong, for a failure from outside Wiregrad while running
    `command` on `file`; None for anything else (a bug of ours)."""
    doing = f"while {DOING.get(command, command)} {file}"
    if isinstance(error, MemoryError):
        return f"too large for memory {doing}: it needs more memory than this machine has"
    if isinstance(error, RecursionError):
        return f"{file}: nested too deeply to {command} (the document's blocks, loops or " \
               "branches go deeper than Wiregrad can follow)"
    if isinstance(error, zipfile.BadZipFile):
        return f"a file read {doing} is not a valid archive (zip) file"
    if isinstance(error, OSError):
        return _os_problem(error, doing)
    return None


def _os_problem(error: OSError, doing: str) -> str:
    problem = OS_PROBLEMS.get(error.errno) or error.strerror or str(error) or "system error"
    if error.filename is not None:
        return f"{error.filename}: {problem} ({doing})"
    return f"{problem} ({doing})"


__all__ = ["describe"]
