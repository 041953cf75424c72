"""The recently opened files: absolute paths kept in the settings, newest first, and the
File > Open Recent menu that shows them by file name (the folder in its tooltip)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction

KEY = "recent"
MAX_RECENT = 8


def recent_paths() -> list:
    """The remembered files, newest first. Relative paths, as older versions stored them,
    are left out: what they name depends on the folder Wiregrad was started in."""
    value = QSettings().value(KEY, []) or []
    if isinstance(value, str):
        value = [value]
    return [p for p in value if isinstance(p, str) and os.path.isabs(p)]


def remember(path) -> list:
    """Put `path` (made absolute) first in the list; the list as it is now."""
    path = os.path.abspath(str(path))
    paths = [path] + [p for p in recent_paths() if p != path]
    QSettings().setValue(KEY, paths[:MAX_RECENT])
    return paths[:MAX_RECENT]


def menu_texts(paths: list) -> list:
    """What the menu shows for each path: its file name, and its folder's name after it when
    two files share a name."""
    names = [Path(p).name for p in paths]
    return [f"{name}  —  {Path(p).parent.name}" if names.count(name) > 1 else name
            for name, p in zip(names, paths)]


def fill_menu(menu, open_path) -> None:
    """Rebuild `menu` from the settings; `open_path(path)` is called with the chosen one."""
    menu.clear()
    menu.setToolTipsVisible(True)
    paths = recent_paths()
    for path, text in zip(paths, menu_texts(paths)):
        action = QAction(text.replace("&", "&&"), menu)
        action.setData(path)
        action.setToolTip(path)
        action.setStatusTip(path)
        action.triggered.connect(lambda _checked=False, p=path: open_path(p))
        menu.addAction(action)
    menu.setEnabled(bool(paths))


def last_folder() -> str:
    """The folder of the file opened or saved last, when it still exists; else ''."""
    for path in recent_paths():
        folder = os.path.dirname(path)
        if os.path.isdir(folder):
            return folder
    return ""
