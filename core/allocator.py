"""Keep freed memory for reuse while training, instead of handing it back to the OS.

A training step allocates and frees the same large arrays again and again. glibc's malloc
trims the top of its heap after large frees, so every step faults thousands of fresh pages in
again: on a small convnet that tripled the time of a step. Asking malloc to keep a pad of free
memory at the top of the heap (and to trim only past a larger threshold) removes those faults.
This is process-wide, so the processes that train call it at their entry (`wiregrad train`, the
editor's training process, the benchmarks), never the library on a caller's behalf; a script
that trains through the API may call it too.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
PAD_BYTES = 64 << 20
TRIM_BYTES = 256 << 20
# Setting any of these stops glibc adjusting its mmap threshold by itself, which would leave
# every array over 128 KiB mapped and unmapped afresh; up to 32 MiB (glibc's largest) they
# come from the heap and are reused instead.
MMAP_BYTES = 32 << 20

_done = False


def keep_freed_memory() -> bool:
    """Tune glibc's malloc once; returns whether it could (False off glibc)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = all(mallopt(option, value) for option, value in (
        (M_MMAP_THRESHOLD, MMAP_BYTES), (M_TOP_PAD, PAD_BYTES), (M_TRIM_THRESHOLD, TRIM_BYTES)))
    return _done
