"""Named arrays in `.npz` archives, read and written safely: the one place Wiregrad does it.

Weights (`wiregrad train`, the editor's `NAME.weights.npz`, `wiregrad export --weights`) and
`.npz` datasets all go through `load_arrays` and `save_arrays`; `.npy` datasets through
`load_array`.

Reading never unpickles, and never trusts what a file says about itself before checking it:
each array's `.npy` header is read first, and the bytes its shape declares are compared with
what the archive holds and with this machine's memory, before anything is allocated. So a
100-byte file that declares 10^12 rows is refused at once, by name, instead of exhausting the
machine. Every problem is a GraphError that names the file and says what is wrong in words;
messages never quote the file's bytes.

An exported training script copies `load_arrays` to read its `.npz` dataset
(core/export/copying.py), so the reading half uses only numpy, the standard library modules an
export imports, and its own names.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import GraphError
from .fileio import atomic_write

# Deflate cannot expand data more than about 1032 times; an archive entry that claims more is
# lying about its size.
NPZ_MAX_DEFLATE_RATIO = 1100
NPZ_ZIP_MAGIC = b"PK\x03\x04"
NPZ_NPY_MAGIC = b"\x93NUMPY"


def load_arrays(path, shown: str | None = None) -> dict:
    """The arrays of an .npz archive, by name (`np.savez(f, w=...)` gives `{"w": ...}`).

    `shown` is how messages name the file (default: the path). Raises GraphError, and only
    GraphError, for anything wrong with the file."""
    shown = str(path) if shown is None else shown
    handle = _npz_open(path, shown)
    with handle:
        archive = _npz_archive(handle, shown)
        with archive:
            total = os.fstat(handle.fileno()).st_size
            headers = [_npz_header(archive, info, total, shown) for info in archive.infolist()]
            _npz_check_memory([(f"array {n!r}", size) for n, _, size in headers], shown)
            arrays = {}
            for name, info, declared in headers:
                with archive.open(info) as member:
                    arrays[name] = _npz_read(member, f"array {name!r}", declared, shown)
            return arrays


def load_array(path, shown: str | None = None) -> np.ndarray:
    """The array of a .npy file, checked as `load_arrays` checks each array of an archive."""
    shown = str(path) if shown is None else shown
    handle = _npz_open(path, shown)
    with handle:
        start = handle.read(len(NPZ_NPY_MAGIC))
        handle.seek(0)
        if not start:
            raise GraphError(f"{shown}: empty file (0 bytes), not a .npy array")
        if start.startswith(NPZ_ZIP_MAGIC):
            raise GraphError(f"{shown}: an .npz archive, not a single .npy array")
        if not start.startswith(NPZ_NPY_MAGIC):
            raise GraphError(f"{shown}: not a .npy array file")
        size = os.fstat(handle.fileno()).st_size
        declared = _npz_declared_bytes(handle, size, "the array", shown,
                                       "not a valid .npy file")
        _npz_check_memory([("the array", declared)], shown)
        handle.seek(0)
        return _npz_read(handle, "the array", declared, shown)


def _npz_open(path, shown: str):
    """The file, opened for reading, or a GraphError saying why it cannot be."""
    if os.path.isdir(path):
        raise GraphError(f"{shown}: is a folder, not an .npz file")
    if os.path.exists(path) and not os.path.isfile(path):
        raise GraphError(f"{shown}: not a plain file (a pipe or a device?)")
    try:
        handle = open(path, "rb")  # noqa: SIM115 (returned open; the caller closes it)
    except FileNotFoundError:
        raise GraphError(f"{shown}: no such file") from None
    except PermissionError:
        raise GraphError(f"{shown}: permission denied (the file cannot be read)") from None
    except OSError as error:
        raise GraphError(f"{shown}: cannot be read ({error.strerror or 'system error'})") from None
    return handle


def _npz_archive(handle, shown: str):
    """The zip archive in an open file, telling an empty, cut or foreign file apart."""
    start = handle.read(len(NPZ_NPY_MAGIC))
    handle.seek(0)
    if not start:
        raise GraphError(f"{shown}: empty file (0 bytes), not an .npz archive")
    if start.startswith(NPZ_NPY_MAGIC):
        raise GraphError(f"{shown}: a single .npy array, not an .npz archive")
    try:
        return zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError):
        if start.startswith(NPZ_ZIP_MAGIC):
            raise GraphError(f"{shown}: truncated: the archive ends before its table of "
                             "contents (the file was cut short, perhaps by a full disk or an "
                             "interrupted copy)") from None
        raise GraphError(f"{shown}: not a valid .npz archive (not a zip file)") from None


def _npz_header(archive, info, total: int, shown: str) -> tuple:
    """(array name, zip entry, bytes its data declares), after checking the entry's .npy
    header against what the archive can hold. Allocates nothing."""
    if not info.filename.endswith(".npy"):
        raise GraphError(f"{shown}: not a valid .npz archive (it holds an entry that is not a "
                         ".npy array)")
    name = info.filename[: -len(".npy")]
    _npz_check_entry_size(info, name, total, shown)
    what = f"array {name!r}"
    try:
        with archive.open(info) as member:
            declared = _npz_declared_bytes(member, info.file_size, what, shown,
                                           "not a valid .npz archive")
    except (EOFError, zipfile.BadZipFile, zlib.error, OSError, NotImplementedError,
            RuntimeError):
        raise GraphError(f"{shown}: not a valid .npz archive ({what} cannot be read)") from None
    return name, info, declared


def _npz_declared_bytes(stream, size: int, what: str, shown: str, invalid: str) -> int:
    """The bytes of data a .npy header at the start of `stream` (`size` bytes in all)
    declares, once it is known to be plain numbers or text that fit in those bytes. `invalid`
    says what the file is not, when there is no header to read."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise GraphError(f"{shown}: {what} is in .npy format version "
                             f"{version[0]}.{version[1]}, which Wiregrad does not read")
    except GraphError:
        raise
    except Exception:  # noqa: BLE001
        # numpy parses the header text with tokenize and ast: hostile bytes there raise
        # ValueError, SyntaxError, tokenize.TokenError or RecursionError. Each means the same.
        raise GraphError(f"{shown}: {invalid} ({what} has no valid .npy header)") from None
    held = size - stream.tell()
    if dtype.hasobject:
        raise GraphError(f"{shown}: {what} holds Python objects, which are never loaded (no "
                         "pickle); save plain number or text arrays")
    if any(d < 0 for d in shape):
        raise GraphError(f"{shown}: {what} declares an impossible shape {shape}")
    declared = math.prod(shape) * dtype.itemsize
    if declared > held:
        raise GraphError(f"{shown}: {what} declares shape {shape} of {dtype} = "
                         f"{_npz_size_text(declared)}, more than the file holds "
                         f"({_npz_size_text(max(held, 0))}): the file is damaged or was cut "
                         "short")
    return declared


def _npz_check_entry_size(info, name: str, total: int, shown: str) -> None:
    """An entry's sizes must fit the file: its compressed bytes inside it, and no more
    expansion than its compression can give."""
    if info.header_offset + info.compress_size > total:
        raise GraphError(f"{shown}: truncated: array {name!r} runs past the end of the file")
    if info.compress_type == zipfile.ZIP_STORED:
        possible = info.compress_size
    else:
        possible = info.compress_size * NPZ_MAX_DEFLATE_RATIO + 1024
    if info.file_size > possible:
        raise GraphError(f"{shown}: array {name!r} claims {_npz_size_text(info.file_size)} "
                         f"from {_npz_size_text(info.compress_size)} in the file, more than "
                         "the file could hold: the file is damaged")


def _npz_check_memory(needs: list, shown: str) -> None:
    """Refuse, before allocating, arrays that need more than this machine has: `needs` lists
    (what, bytes) for each array."""
    memory = _npz_memory_bytes()
    if memory is None:
        return
    for what, declared in needs:
        if declared > memory:
            raise GraphError(f"{shown}: {what} needs {_npz_size_text(declared)}, more than "
                             f"this machine's memory ({_npz_size_text(memory)})")
    needed = sum(declared for _, declared in needs)
    if needed > memory:
        raise GraphError(f"{shown}: the arrays need {_npz_size_text(needed)} in all, more than "
                         f"this machine's memory ({_npz_size_text(memory)})")


def _npz_memory_bytes():
    """This machine's physical memory in bytes, where the system says; else None."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _npz_read(stream, what: str, declared: int, shown: str) -> np.ndarray:
    """One array, read from the start of its .npy bytes in chunks, its size already checked."""
    try:
        return np.lib.format.read_array(stream, allow_pickle=False)
    except MemoryError:
        raise GraphError(f"{shown}: {what} ({_npz_size_text(declared)}) is too large for "
                         "memory") from None
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error, OSError,
            NotImplementedError, RuntimeError):
        raise GraphError(f"{shown}: {what} cannot be read: the file is damaged or was cut "
                         "short") from None


def _npz_size_text(count: int) -> str:
    """A byte count for people: `96 bytes`, `4.1 kB`, `3.2 GB`."""
    if count < 1000:
        return f"{count} bytes"
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        count /= 1000
        if count < 1000:
            return f"{count:.1f} {unit}"
    return f"{count:.3g} PB"


def npz_bytes(arrays: dict) -> bytes:
    """The bytes of an .npz archive holding `arrays` (name -> array), as `np.savez` writes
    them (any name, even `file`); arrays of Python objects are refused, never pickled."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            array = np.asarray(value)
            if array.dtype.hasobject:
                raise GraphError(f"array {name!r} holds Python objects, which are never saved "
                                 "(no pickle)")
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
    return buffer.getvalue()


def save_arrays(path, arrays: dict) -> None:
    """Write `arrays` as an .npz archive, atomically: a crash leaves the old file or the new."""
    atomic_write(Path(path), npz_bytes(arrays))


__all__ = ["load_array", "load_arrays", "npz_bytes", "save_arrays"]
