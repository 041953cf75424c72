"""Installed, Wiregrad is one package, `wiregrad`; the engine never imports the editor."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("core", "nodes", "app")


def _modules(part: str):
    return sorted((ROOT / part).rglob("*.py"))


def _imports(path: Path):
    """(level, module name) of every import in a file."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield 0, alias.name
        elif isinstance(node, ast.ImportFrom):
            yield node.level, node.module or ""


def test_every_folder_of_code_is_installed_under_wiregrad():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    listed = set(config["setuptools"]["packages"])
    folders = {p.parent.relative_to(ROOT) for part in PARTS for p in _modules(part)}
    wanted = {"wiregrad"} | {"wiregrad." + ".".join(f.parts) for f in folders}
    assert wanted == listed
    assert config["setuptools"]["package-dir"] == {
        "wiregrad": "wiregrad", **{f"wiregrad.{part}": part for part in PARTS}}


def test_no_module_claims_a_generic_top_level_name():
    # Inside the package, the parts reach each other relatively (or through `wiregrad`);
    # `import core` would only work in a checkout.
    for part in PARTS:
        for path in _modules(part):
            for level, name in _imports(path):
                assert not (level == 0 and name.split(".")[0] in PARTS), (path, name)


def test_the_engine_and_the_blocks_never_import_the_editor():
    for part in ("core", "nodes"):
        for path in _modules(part):
            depth = len(path.relative_to(ROOT).parts) - 1
            for level, name in _imports(path):
                if level == depth + 1 or (level == 0 and name.startswith("wiregrad")):
                    target = name.removeprefix("wiregrad.").split(".")[0]
                    assert target != "app", (path, name)


def test_import_wiregrad_gives_the_api_and_the_command_runs(tmp_path):
    code = ("import wiregrad as wg, sys; "
            "doc = wg.load(sys.argv[1]); print(sorted(wg.compile(doc).output_shapes)); "
            "print('core' in sys.modules, 'app' in sys.modules, 'wiregrad.app' in sys.modules)")
    example = ROOT / "assets" / "examples" / "spiral-mlp.wg.json"
    out = subprocess.run([sys.executable, "-c", code, str(example)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.splitlines() == ["['logits', 'loss']", "False False False"]
    check = subprocess.run([sys.executable, "-m", "wiregrad", "check", str(example)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=False)
    assert check.returncode == 0 and check.stdout.rstrip().endswith("OK"), check.stderr
