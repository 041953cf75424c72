"""Work around a PySide6 reference-count bug that kills the process on Python < 3.12.

With PySide6 6.12 on Python 3.11, every call of a Qt method that returns void
(`QPainterPath.cubicTo`, `QGraphicsItem.update`, `QPen.setWidth`, ...) gives back `None`
without taking a reference to it, so None's reference count falls by one per call. It starts
near 5,000; a few thousand canvas updates later CPython aborts with "Fatal Python error:
none_dealloc: deallocating None". Python 3.12 made None immortal (PEP 683), which hides the bug.

`protect_none()` probes for the leak and, only where it is present, lifts None's reference
count by 2**40 (at a million leaked references a second, that lasts twelve days of constant
painting; 3.12 does the same by design). Nothing else is touched.
"""

from __future__ import annotations

import ctypes
import sys

_LIFT = 1 << 40
_done = False


def leaks_none() -> bool:
    from PySide6.QtCore import QPointF

    point = QPointF()
    before = sys.getrefcount(None)
    for _ in range(100):
        point.setX(1.0)
    return sys.getrefcount(None) < before - 50


def protect_none() -> bool:
    """Make None effectively immortal if this Python/PySide6 pair leaks it. True if it did."""
    global _done
    if _done or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if not leaks_none():
        return False
    refcnt = ctypes.c_ssize_t.from_address(id(None))  # ob_refcnt: the first field of PyObject
    refcnt.value += _LIFT
    _done = True
    return True
