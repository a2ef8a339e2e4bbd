"""Files in and out, for the edges (CLI, API, batch): the core itself takes texts, never paths."""

from __future__ import annotations

from pathlib import Path

from ur_engine import resources
from ur_engine.errors import MissingRuleFileError
from ur_engine.rules.library import Library, Source, load


def read_sources(root: str | Path) -> list[Source]:
    """Every ``*.yaml`` file under ``root``, named relative to it (``valuesets/ipo.yaml``)."""
    root = Path(root)
    if not root.is_dir():
        raise MissingRuleFileError(f"no rule directory at {root}", file=str(root))
    out = []
    for path in sorted(root.rglob("*.y*ml")):
        if path.suffix not in (".yaml", ".yml") or any(p.startswith(".") for p in path.relative_to(root).parts):
            continue
        out.append(Source(path.relative_to(root).as_posix(), path.read_text(encoding="utf-8")))
    return out


def default_sources() -> list[Source]:
    """The default rule library shipped with ur-engine."""
    return read_sources(Path(str(resources.data("rules"))))


def load_library(root: str | Path | None = None) -> Library:
    """Load the rule library under ``root`` (the default library when None)."""
    return load(read_sources(root) if root is not None else default_sources())
