"""The layout holds: a pure core without web, CLI, database or file-system imports; small modules."""

from __future__ import annotations

import ast

import pytest

from conftest import ROOT

EDGES = {"cli.py", "io.py", "batch.py", "inputs.py", "fhir.py"}  # edges that read and write files; api.py is at the root
FORBIDDEN = {"flask", "werkzeug", "click", "sqlite3", "psycopg", "psycopg2", "sqlalchemy", "pathlib", "os",
             "requests", "urllib"}
MODULES = sorted((ROOT / "ur_engine").glob("*.py"))


@pytest.mark.parametrize("path", [p for p in MODULES if p.name not in EDGES], ids=lambda p: p.name)
def test_core_module_imports_no_edge_library(path):
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    assert not names & FORBIDDEN, f"{path.name} imports {names & FORBIDDEN}"


@pytest.mark.parametrize("path", MODULES + [ROOT / "api.py"], ids=lambda p: p.name)
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= 600


def test_durable_rules_is_wrapped_in_one_module():
    users = [p.name for p in MODULES if "durable_rules_engine" in p.read_text() or "import durable" in p.read_text()]
    assert users == ["evaluator.py"]
