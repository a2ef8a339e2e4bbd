"""What every ``ur`` command shares: the rule library option and how rule errors are printed."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ur_engine.errors import RuleError, RuleErrors
from ur_engine.intake.rule_files import load_library

RULES_HELP = "Rule library directory (default: the rules shipped with ur-engine)."


def library_or_exit(rules: str | None):
    try:
        return load_library(rules)
    except RuleError as exc:
        print_rule_errors(exc)
        sys.exit(1)


def print_rule_errors(exc: RuleError, rules_dir: str | None = None) -> None:
    errors = exc.errors if isinstance(exc, RuleErrors) else [exc]
    for e in errors:
        click.echo(str(e), err=True)
        line = caret(rules_dir, e)
        if line:
            click.echo(line, err=True)
    click.echo(f"{len(errors)} error(s)", err=True)


def caret(rules_dir: str | None, e: RuleError) -> str | None:
    """The offending line of the file with a caret under the column."""
    if not (rules_dir and e.file and e.line):
        return None
    path = Path(rules_dir) / e.file
    try:
        line = path.read_text(encoding="utf-8").splitlines()[e.line - 1]
    except (OSError, IndexError):
        return None
    return f"    {line}\n    {' ' * ((e.column or 1) - 1)}^"
