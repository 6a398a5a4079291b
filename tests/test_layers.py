"""The floors of the code (DESIGN.md): core < workers, index < plan < flows < service < cli. A
module may import its own floor or those below it, never one above (imports inside functions
count too: a lazy import is still a dependency). plan/ is pure: no Ray, models, media or files."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import vidsift

PACKAGE = Path(vidsift.__file__).parent
FLOORS = {
    "vidsift.core": 0,
    "vidsift.workers": 1,
    "vidsift.index": 1,
    "vidsift.pipeline.plan": 2,
    "vidsift.pipeline.flows": 3,
    "vidsift.pipeline.service": 4,
    "vidsift.pipeline.cli": 5,
}
# What plan/ may not reach, even lazily: the heavy runtimes and the helpers that touch files.
NOT_IN_PLAN = ("ray", "torch", "transformers", "av", "decord", "faiss", "cv2", "PIL",
               "vidsift.core.files", "vidsift.core.media", "vidsift.core.probe",
               "vidsift.core.images", "os", "pathlib", "shutil", "subprocess", "sqlite3")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _floor(module: str) -> int | None:
    best = None
    for prefix, floor in FLOORS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, floor)
    return best[1] if best else None


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            # `from vidsift.pipeline import flows` names a package, not an attribute
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _modules():
    return [(path, _module_name(path)) for path in sorted(PACKAGE.rglob("*.py"))]


def test_every_module_sits_on_a_floor():
    loose = [name for _, name in _modules()
             if _floor(name) is None and name not in ("vidsift", "vidsift.pipeline")]
    assert loose == []


def test_no_import_runs_up_a_floor():
    upward = []
    for path, name in _modules():
        floor = _floor(name)
        if floor is None:
            continue
        for imported in _imports(path):
            target = _floor(imported)
            if target is not None and target > floor:
                upward.append(f"{name} imports {imported}")
    assert upward == []


def test_plan_imports_nothing_heavy_and_touches_no_files():
    reached = []
    for path, name in _modules():
        if _floor(name) != FLOORS["vidsift.pipeline.plan"]:
            continue
        for imported in _imports(path):
            if any(imported == banned or imported.startswith(banned + ".")
                   for banned in NOT_IN_PLAN):
                reached.append(f"{name} imports {imported}")
    assert reached == []


def test_importing_plan_loads_no_runtime():
    modules = [name for _, name in _modules() if name.startswith("vidsift.pipeline.plan")]
    code = ("import sys\n" + "".join(f"import {name}\n" for name in modules) +
            "print(sorted(m for m in ('ray', 'torch', 'transformers', 'av', 'faiss')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
