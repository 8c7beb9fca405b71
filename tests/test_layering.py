"""The layering contract: Qt only in studio/ui; studio/ui reaches torch, the methods and the training loop only
through the service, so the GUI's own modules import without PyTorch."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import studio

ROOT = Path(studio.__file__).parent
QT = ("PySide6", "shiboken6", "pyqtgraph", "superqt", "qasync", "qtpy", "PyQt5", "PyQt6")
UI_FORBIDDEN = ("torch", "torchvision", "studio.methods", "studio.training", "studio.evaluation",
                "studio.service.model_service")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module an ``import`` or ``from ... import`` in the file names (lazy imports inside functions too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return out


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _sources() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def test_the_source_tree_is_what_the_contract_checks():
    names = {p.relative_to(ROOT).as_posix() for p in _sources()}
    assert {"ui/main_window.py", "ui/composer.py", "service/model_service.py", "methods/base.py"} <= names


def test_qt_is_imported_only_in_studio_ui():
    found = [f"{p.relative_to(ROOT)}:{line}: {name}" for p in _sources() if p.relative_to(ROOT).parts[0] != "ui"
             for line, name in _imports(p) if _within(name, QT)]
    assert not found, "Qt outside studio/ui:\n" + "\n".join(found)


def test_the_ui_imports_no_torch_methods_or_training():
    found = [f"ui/{p.relative_to(ROOT / 'ui')}:{line}: {name}" for p in sorted((ROOT / "ui").rglob("*.py"))
             for line, name in _imports(p) if _within(name, UI_FORBIDDEN)]
    assert not found, "studio/ui reaches past the service:\n" + "\n".join(found)


def test_importing_every_ui_module_loads_no_torch():
    modules = sorted("studio.ui." + ".".join(p.relative_to(ROOT / "ui").with_suffix("").parts)
                     for p in (ROOT / "ui").rglob("*.py") if p.name != "__init__.py")
    assert "studio.ui.main_window" in modules and "studio.ui.training_tab" in modules
    # studio.methods.config declares options as plain dataclass fields (no torch); the service's descriptions
    # hand those fields to the Training tab's form
    code = ("import importlib, json, sys\n"
            "PLAIN = {'studio.methods.config'}\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "heavy = sorted(m for m in sys.modules if m in ('torch', 'torchvision', 'studio.training')\n"
            "               or m.startswith(('torch.', 'torchvision.', 'studio.training.', 'studio.methods.'))\n"
            "               and m not in PLAIN)\n"
            "print(json.dumps(heavy[:20]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**_env(), "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
