"""Imports run one way (pipelines -> assets -> transforms and expectations) with no cycle, and the code uses its
libraries as published: no private modules, nothing planted in sys.modules, no patched __main__."""
from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "assets", "expectations")
SOURCES = [p for package in (*PACKAGES, "scripts") for p in sorted((ROOT / package).rglob("*.py"))]


def test_the_import_contracts_hold():
    """pyproject.toml [tool.importlinter]: the layers of the project and inside assets and pipelines."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "broken" not in done.stdout.lower().replace("0 broken", "")


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    sorter = graphlib.TopologicalSorter({m: graph.find_modules_directly_imported_by(m) for m in graph.modules})
    sorter.prepare()  # raises graphlib.CycleError naming the modules of a cycle


def _imported_names(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_no_private_module_of_a_library_is_imported():
    private = []
    for path in SOURCES:
        for name in _imported_names(ast.parse(path.read_text(encoding="utf-8"))):
            parts = name.split(".")
            if parts[0] not in (*PACKAGES, "__future__") and any(p.startswith("_") for p in parts[1:]):
                private.append(f"{path.relative_to(ROOT)}: {name}")
    assert not private


def test_nothing_is_planted_in_sys_modules_and_main_is_left_alone():
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, (ast.AugAssign, ast.AnnAssign)) else []
            for target in targets:
                text = ast.unparse(target)
                if "sys.modules" in text or text.endswith(("__spec__", "__file__")):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text}")
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("sys.modules.setdefault",
                                                                         "sys.modules.update", "setattr"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)[:80]}")
    assert not found


def test_each_release_instance_config_is_stock_dagster():
    """The instance config the project writes names no class of the project's or a library's private module."""
    from pipelines.release import INSTANCE_CONFIG

    assert set(INSTANCE_CONFIG) <= {"telemetry", "nux", "run_queue"}
    assert "module" not in repr(INSTANCE_CONFIG) and "class" not in repr(INSTANCE_CONFIG)
