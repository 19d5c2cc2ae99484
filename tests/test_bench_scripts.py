"""`make bench` and `make soak` are scripts outside the suite: every name they take from spxdl must
still be there (a module split or a name moved breaks a benchmark only when it runs, minutes in)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def spxdl_imports(script: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from spxdl... import name`` in ``script``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(script.read_text(), str(script))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "spxdl":
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.split(".")[0] == "spxdl"]
    return found


@pytest.mark.parametrize("script", sorted(BENCH.glob("*.py")), ids=lambda path: path.name)
def test_every_name_a_benchmark_takes_from_spxdl_is_there(script):
    missing = []
    for module, name in spxdl_imports(script):
        imported = importlib.import_module(module)
        if name and not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{module}.{name}")
    assert missing == []
