"""What every ``ur`` command shares: the rule library option and how rule errors are printed."""

from __future__ import annotations

import copy
import os
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
        print_rule_errors(exc, rules)
        sys.exit(1)


def shown_path(rules_dir: str | os.PathLike[str] | None, name: str | None) -> str | None:
    """A file of the library as the user can open it from where the command ran: the library directory as it
    was given, joined with the file's name in the library."""
    if not (rules_dir and name) or os.path.isabs(name) or os.path.normpath(name) == os.path.normpath(rules_dir):
        return name
    return os.path.normpath(os.path.join(rules_dir, name))


def print_rule_errors(exc: RuleError, rules_dir: str | None = None) -> None:
    errors = exc.errors if isinstance(exc, RuleErrors) else [exc]
    for e in errors:
        shown = copy.copy(e)
        shown.file = shown_path(rules_dir, e.file)
        click.echo(str(shown), err=True)
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
