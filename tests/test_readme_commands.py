"""The README's commands, run in order in one checkout, work: the quick start trains an
example (writing its run folder beside it), and the app tests that open every example still
pass after that, within a time limit, instead of opening the run folder and hanging.

The commands are read from README.md, so the README cannot drift from what is tested. The
checkout's examples are not touched: they are copied, and the app test is pointed at the copy
(WIREGRAD_EXAMPLES).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CANVAS_TEST = "tests/app/test_user_flows.py::test_every_example_loads_into_the_canvas"


def readme_blocks(section: str) -> list:
    """The ```sh code blocks of one `## ` section of README.md, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## )", text, re.DOTALL | re.MULTILINE)
    assert match, f"README.md has no '## {section}' section"
    return re.findall(r"```sh\n(.*?)```", match.group(1), re.DOTALL)


def commands_in(block: str) -> list:
    """Each command of a shell block, as words ('a && b' is two commands)."""
    joined = block.replace("\\\n", " ")
    return [shlex.split(part) for line in joined.splitlines()
            for part in line.split("&&") if part.strip()]


def quick_start_commands() -> tuple:
    """(the train command, the test command) of the README's quick start, as words."""
    commands = [c for block in readme_blocks("Quick start") for c in commands_in(block)]
    train = next((c for c in commands if c[:2] == ["wiregrad", "train"]), None)
    tests = next((c for c in commands if "pytest" in c), None)
    assert train is not None, f"no 'wiregrad train' in the README's quick start: {commands}"
    assert tests is not None, f"no pytest run in the README's quick start: {commands}"
    return train, tests


def test_the_readme_quick_start_names_the_commands_run_here():
    train, tests = quick_start_commands()
    assert train[2] == "assets/examples/spiral-mlp.wg.json"
    assert (ROOT / train[2]).is_file()
    assert tests[-3:] == ["python", "-m", "pytest"]
    assert "QT_QPA_PLATFORM=offscreen" in tests


@pytest.mark.timeout(330)  # room for both children's own limits, so a hang shows their output
def test_the_app_tests_pass_after_the_quick_start_has_trained_an_example(tmp_path):
    train, _ = quick_start_commands()
    # A checkout of the examples and the data they read, where training writes what it writes.
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "assets", checkout / "assets")
    document = checkout / train[2]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=str(ROOT))

    # `wiregrad train FILE`, as the README says, for one epoch to keep it short
    command = [sys.executable, "-m", "wiregrad.core.cli", *train[1:2], str(document), *train[3:],
               "--epochs", "1"]
    done = subprocess.run(command, check=False, cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    run_folder = document.parent / "spiral-mlp-run"
    assert (run_folder / "weights.npz").is_file(), sorted(p.name for p in document.parent.iterdir())

    # then the app test that opens every example, on that folder
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
               "--basetemp", str(tmp_path / "pytest"), "--timeout", "150", CANVAS_TEST]
    env["WIREGRAD_EXAMPLES"] = str(document.parent)
    try:
        done = subprocess.run(command, check=False, cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=200)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the canvas test hung after the quick start:\n{exc.stdout}") from None
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "1 passed" in output, output
