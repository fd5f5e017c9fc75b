"""The packages import one another downward only (issue 15).

Every import of every project module is read with ``ast`` (imports inside functions
too), and each package may import only packages of a lower layer. The layers are
the import graph as it stood when this test was written (2026-12, after issue 15's
moves), bottom first:

0. ``core``: recordings, frames, run folders, outputs, the CLI helper; nothing else.
1. ``models``, ``sim``: the networks and their MAC counter; the camera model, its
   calibration against the side cameras, and the demo road.
2. ``serving``: running a model (Keras, LiteRT, ONNX).
3. ``training``, ``drive``: fitting a model; the drive server.
4. ``tools``: the simulator-protocol client and the harnesses around the drive server
   (child process, headless browser, mp4 writer).
5. ``evaluation``: replays, the closed loop, robustness, comparisons (drives the
   simulator client as a policy, trains in DAgger rounds).
6. ``export``, ``slimming``, ``digits``: programs built on all of the above.
7. ``benchmarks`` and the top-level scripts (``train.py``, ``drive.py``, ...).

No import goes up a layer: ``train.py`` (a top-level script) wires training to the
evaluator above it (closed-loop selection, DAgger rounds, the demo drive); the one
upward import this test once allowed, ``training/cli.py`` -> ``evaluation``, is gone.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = "(top-level scripts)"
LAYERS = {
    "core": 0,
    "models": 1,
    "sim": 1,
    "serving": 2,
    "training": 3,
    "drive": 3,
    "tools": 4,
    "evaluation": 5,
    "export": 6,
    "slimming": 6,
    "digits": 6,
    "benchmarks": 7,
    SCRIPTS: 7,
}
SKIP_DIRS = {"runs", "tests", "docs", "artifacts", "peers"}


def project_packages() -> set[str]:
    return {
        p.name
        for p in ROOT.iterdir()
        if p.is_dir() and (p / "__init__.py").is_file() and not p.name.startswith(".")
    }


def project_modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in SKIP_DIRS or any(p.startswith(".") for p in rel.parts):
            continue
        yield rel, (rel.parts[0] if len(rel.parts) > 1 else SCRIPTS)


def imported_packages(path: Path, packages: set[str]):
    """(line, top-level project package) of every absolute import in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue  # relative imports stay inside their package
        for name in names:
            top = name.split(".")[0]
            if top in packages:
                yield node.lineno, top


def import_graph() -> dict[tuple[str, str], list[str]]:
    """``(importer package, imported package) -> ["file:line", ...]`` across packages."""
    packages = project_packages()
    graph: dict[tuple[str, str], list[str]] = {}
    for rel, owner in project_modules():
        for line, top in imported_packages(ROOT / rel, packages):
            if top != owner:
                graph.setdefault((owner, top), []).append(f"{rel.as_posix()}:{line}")
    return graph


def test_every_package_has_a_layer():
    missing = sorted(project_packages() - set(LAYERS))
    assert not missing, f"put these packages in LAYERS (tests/test_layers.py): {missing}"


def test_core_imports_nothing_of_the_project():
    found = {k: v for k, v in import_graph().items() if k[0] == "core"}
    assert not found, f"core must import no project package: {found}"


def test_packages_import_downward_only():
    wrong = [
        f"{site} imports {target} (layer {LAYERS[target]}) from {owner} (layer {LAYERS[owner]})"
        for (owner, target), where in sorted(import_graph().items())
        if LAYERS[target] >= LAYERS[owner]
        for site in where
    ]
    assert not wrong, "imports that do not go down a layer:\n" + "\n".join(wrong)


def test_the_parser_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from evaluation.cli import main\n    import core.cli\n")
    assert list(imported_packages(module, {"core", "evaluation"})) == [
        (2, "evaluation"),
        (3, "core"),
    ]


def test_the_readme_layout_table_names_every_package_and_no_other():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    named = {
        cell.strip("`/")
        for line in table.splitlines()
        if line.startswith("| `")
        for cell in line.split("|")[1].replace(",", " ").split()
        if cell.endswith("/`")
    }
    assert named == project_packages(), (
        f"README's Layout table: missing {sorted(project_packages() - named)}, "
        f"not packages {sorted(named - project_packages())}"
    )
