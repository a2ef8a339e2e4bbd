"""The layout holds: imports run one way (import-linter contracts in pyproject.toml), modules stay small, and
the folder listing names the pipeline's stages."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

MODULES = sorted(p for p in (ROOT / "ur_engine").rglob("*.py"))


def test_import_contracts_hold():
    """Layers edges → pipeline, a core free of web/CLI/database/file imports, durable-rules in one module, and a
    service that the engine never imports: every contract in pyproject.toml is kept."""
    code = f"import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports({str(ROOT / 'pyproject.toml')!r}, no_cache=True))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's packages, whichever one is installed
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("stage", ["intake", "record.py", "facts.py", "rules", "evaluation", "decision.py",
                                   "engine.py", "authoring", "batch", "cli"])
def test_the_listing_shows_each_stage(stage):
    assert (ROOT / "ur_engine" / stage).exists()


@pytest.mark.parametrize("path", MODULES + [ROOT / "api.py"], ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= 600


def test_durable_rules_is_wrapped_in_one_module():
    users = [p.relative_to(ROOT).as_posix() for p in MODULES
             if "durable_rules_engine" in p.read_text() or "import durable" in p.read_text()]
    assert users == ["ur_engine/evaluation/evaluator.py"]
