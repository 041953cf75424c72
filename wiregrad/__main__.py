"""`wiregrad` on the command line (and `python -m wiregrad`): a command for the headless engine
(`check`, `train`, `export`, ...), or the editor (`wiregrad [FILE]`).

It lives here, above core/ and app/, so that the engine never imports the editor.
"""

from __future__ import annotations

import os
import sys


def main(argv: list | None = None) -> int:
    from .core import cli

    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in cli.COMMANDS for a in argv):
        return cli.main(argv)
    return open_editor([a for a in argv if a != "--debug"])


def open_editor(argv: list) -> int:
    """The editor on FILE (or an example); without a display or Qt, one readable line."""
    if sys.platform.startswith("linux") and not any(
            os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        # Without this check Qt aborts the process with a message about plugins.
        print("error: the editor needs a display, and none was found (DISPLAY is not set). "
              "Headless, use `wiregrad check FILE` or `wiregrad train FILE`; or run the editor "
              "under Xvfb: xvfb-run wiregrad", file=sys.stderr)
        return 1
    try:
        from .app.main import main as app_main
    except ImportError as exc:
        print(f"error: the editor cannot start: {exc}", file=sys.stderr)
        return 1
    return app_main(argv)


if __name__ == "__main__":
    sys.exit(main())
