"""Every module of the project imports, and every package its code names is installed.

``.ci/run`` runs the suite in a fresh virtual environment built from requirements.txt
alone, so a package the code imports that requirements.txt does not declare fails here,
even when the import sits inside a function no other test reaches. (Issue 17's sympy
was one level deeper, imported by onnxruntime; the suite running in that environment
is what catches those, tests/export/test_export_parity.py for sympy itself.)
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Named in the code but never needed by the CPU install; each is imported only inside
#: the function that needs it, which test_module_imports proves for module level.
OPTIONAL = {
    "jax": "Keras' JAX backend, for GPU training (README, Training on a GPU)",
    "torch": "Keras' torch backend",
    "playwright": "the browser test and benchmarks/soak.py; .ci/run installs it",
}


def _source_files() -> list[Path]:
    skip = {".git", ".venv", "runs", "artifacts", ".whl", ".gpu"}
    return sorted(
        p
        for p in ROOT.rglob("*.py")
        if not skip & set(p.relative_to(ROOT).parts) and "site-packages" not in p.parts
    )


def project_modules() -> list[str]:
    """Dotted names of the packages' modules, the benchmarks and the root scripts."""
    names = []
    for path in _source_files():
        rel = path.relative_to(ROOT)
        if rel.parts[0] == "tests" or rel.name == "conftest.py":
            continue
        packaged = (ROOT / rel.parts[0] / "__init__.py").is_file()
        if len(rel.parts) > 1 and not packaged:
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def imported_top_names() -> dict[str, str]:
    """Every top-level module named by an import anywhere (functions included) -> a file."""
    found: dict[str, str] = {}
    for path in _source_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _local_names() -> set[str]:
    """Top-level names the project provides itself (packages, scripts, test helpers)."""
    return {p.stem if p.suffix == ".py" else p.name for p in ROOT.iterdir()} | {
        p.stem for p in (ROOT / "tests").rglob("*.py")
    }


def test_the_walk_finds_the_project():
    modules = project_modules()
    assert {"drive.server", "export.convert", "models", "train", "benchmarks.soak"} <= set(modules)
    assert not any(m.startswith("tests") for m in modules)


@pytest.mark.parametrize("name", project_modules())
def test_module_imports(name):
    importlib.import_module(name)


def test_every_third_party_import_is_installed():
    local = _local_names()
    missing = {
        name: where
        for name, where in imported_top_names().items()
        if name not in sys.stdlib_module_names
        and name not in local
        and name not in OPTIONAL
        and importlib.util.find_spec(name) is None
    }
    assert not missing, (
        "imported but not installed (declare them in requirements.txt): "
        + ", ".join(f"{name} (in {where})" for name, where in sorted(missing.items()))
    )
