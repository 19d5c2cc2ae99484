"""The import rules of design.md, checked on the source: the house stays readable only if they hold."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "spxdl"
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (``from spxdl import x`` counts as ``spxdl.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def spxdl_imports(path: Path) -> set[str]:
    own = module_name(path)
    return {name for name in imports_of(path) if name.startswith("spxdl.") and not name.startswith(own + ".")}


def by_name(name: str) -> Path:
    return next(path for path in MODULES if module_name(path) == name)


def test_the_package_has_the_modules_of_the_design():
    names = {module_name(path) for path in MODULES}
    for expected in ("cli", "config", "errors", "trading_calendar", "datasets", "terminal", "convert", "storage",
                     "ledger", "engine", "simulator"):
        assert f"spxdl.{expected}" in names
    assert "spxdl.calendar" not in names  # would shadow the standard library's calendar


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_only_cli_imports_click_and_nothing_imports_cli(path):
    if module_name(path) in ("spxdl.cli", "spxdl.__main__"):
        return
    imported = imports_of(path)
    assert "click" not in imported
    assert not any(name == "spxdl.cli" or name.startswith("spxdl.cli.") for name in imported)


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_library_code_never_prints(path):
    if module_name(path) == "spxdl.cli":
        return
    calls = [node for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"]
    assert not calls, f"{module_name(path)} prints; log through logging.getLogger(__name__)"


@pytest.mark.parametrize("name", ["spxdl.errors", "spxdl.datasets", "spxdl.trading_calendar"])
def test_base_modules_import_nothing_of_spxdl_but_errors(name):
    imported = spxdl_imports(by_name(name))
    assert all(n == "spxdl.errors" or n.startswith("spxdl.errors.") for n in imported), imported


@pytest.mark.parametrize("path", [p for p in MODULES if module_name(p).startswith("spxdl.simulator")], ids=module_name)
def test_the_simulator_imports_only_errors_and_the_calendar(path):
    allowed_prefixes = ("spxdl.simulator", "spxdl.errors", "spxdl.trading_calendar")
    outside = {n for n in spxdl_imports(path) if not n.startswith(allowed_prefixes)}
    assert outside <= {"spxdl.__version__"}, outside


@pytest.mark.parametrize("name", ["spxdl.config", "spxdl.datasets", "spxdl.terminal", "spxdl.convert",
                                  "spxdl.storage", "spxdl.ledger", "spxdl.engine", "spxdl.audit", "spxdl.metrics"])
def test_the_download_path_never_imports_the_simulator(name):
    assert not any(n.startswith("spxdl.simulator") for n in spxdl_imports(by_name(name)))


def test_terminal_touches_no_files_and_convert_and_storage_no_http():
    assert not spxdl_imports(by_name("spxdl.terminal")) & {"spxdl.storage", "spxdl.convert", "spxdl.ledger"}
    for name in ("spxdl.convert", "spxdl.storage"):
        imported = imports_of(by_name(name))
        assert not {"requests", "urllib3", "http.client", "spxdl.terminal"} & imported, name


def test_only_the_engine_starts_processes_for_downloading():
    for path in MODULES:
        name = module_name(path)
        if name == "spxdl.engine" or name.startswith("spxdl.simulator"):
            continue
        imported = imports_of(path)
        assert not {"multiprocessing", "concurrent.futures"} & imported, name
