"""``ur rules``: check, lint, test and replay a rule library."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from ur_engine.cli.common import library_or_exit, print_rule_errors, shown_path
from ur_engine.engine import Engine
from ur_engine.errors import LintConfigError, RuleError, RuleErrors
from ur_engine.intake.rule_files import load_library, read_sources


@click.group()
def rules() -> None:
    """Check and test rule libraries."""


@rules.command("check")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one object with every error, for editors.")
def rules_check(directory, fmt) -> None:
    """Check every file of the rule library in DIRECTORY; print all errors as file:line:col CODE message."""
    try:
        lib = load_library(directory)
    except RuleError as exc:
        if fmt == "json":
            errors = exc.errors if isinstance(exc, RuleErrors) else [exc]
            click.echo(json.dumps({"ok": False, "errors": [e.as_dict() for e in errors]}, indent=2))
        else:
            print_rule_errors(exc, directory)
        sys.exit(1)
    n = sum(len(rs.criteria) for rs in lib.rulesets)
    if fmt == "json":
        click.echo(json.dumps({"ok": True, "digest": lib.digest, "rulesets": len(lib.rulesets), "criteria": n,
                               "errors": []}, indent=2))
    else:
        click.echo(f"ok: {len(lib.rulesets)} rule sets, {n} criteria, {len(lib.valuesets)} valuesets — {lib.digest}")


@rules.command("lint")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--config", type=click.Path(dir_okay=False),
              help="YAML file with per-code levels, e.g. {levels: {L005: info}} (default: DIR/.ur-lint.yaml).")
@click.option("--deny-warnings", is_flag=True, help="Exit 1 on warnings as well as errors.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="Print info findings too (text format; json has them all).")
def rules_lint(directory, config, deny_warnings, fmt, verbose) -> None:
    """Lint the rule library in DIRECTORY: dead or shadowed criteria, overlapping ranges, unused facts…"""
    import dataclasses

    import yaml

    from ur_engine.authoring.lint import CODES, lint

    lib = library_or_exit(directory)
    path = Path(config) if config else Path(directory) / ".ur-lint.yaml"
    levels = {}
    if path.exists():
        levels = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("levels", {})
        # YAML 1.1 reads an unquoted `off` as false.
        levels = {code: "off" if level is False else level for code, level in levels.items()}
    try:
        findings = lint(lib, levels)
    except LintConfigError as exc:
        exc.file = str(path)
        print_rule_errors(exc)
        sys.exit(1)
    if fmt == "json":
        click.echo(json.dumps([dataclasses.asdict(f) for f in findings], indent=2))
    else:
        # Info findings are hints (a gap between bands, say): above an error they would bury it.
        for f in findings:
            if f.level == "info" and not verbose:
                continue
            f = dataclasses.replace(f, file=shown_path(directory, f.file))
            click.echo(f"{f}  [{CODES[f.code][1]}]" if f.level == "error" else str(f))
    counts = {lvl: sum(f.level == lvl for f in findings) for lvl in ("error", "warning", "info")}
    hidden = "" if verbose or fmt == "json" or not counts["info"] else " (-v shows them)"
    click.echo(f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info{hidden}",
               err=True)
    if counts["error"] or (deny_warnings and counts["warning"]):
        sys.exit(1)


@rules.command("replay")
@click.option("--baseline", required=True, type=click.Path(file_okay=False), help="Rule library in force now.")
@click.option("--candidate", required=True, type=click.Path(file_okay=False), help="The edited rule library.")
@click.argument("stays", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--workers", type=click.IntRange(1), default=os.cpu_count() or 1, show_default="all cores")
@click.option("--markdown", type=click.Path(dir_okay=False), help="Write the Markdown report here.")
@click.option("--html", type=click.Path(dir_okay=False), help="Write the HTML report here.")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Judge every stay by the rules in effect on this date (default: each stay's arrival date).")
@click.option("--progress/--no-progress", default=None,
              help="A progress bar on stderr (default: when stderr is a terminal).")
def rules_replay(baseline, candidate, stays, workers, markdown, html, as_of, progress) -> None:
    """Review historical STAYS (NDJSON) under both libraries and report what the edit would change."""
    from tqdm import tqdm

    from ur_engine.authoring.replay import replay
    from ur_engine.authoring.replay_report import to_html, to_markdown

    total = _count_lines(stays)
    show = sys.stderr.isatty() if progress is None else progress
    # Chunks small enough that the bar moves: about ten per worker, 100 to 2,000 stays each.
    chunk = min(2000, max(100, total // (workers * 10)))
    bar = tqdm(total=total, unit=" stays", desc="replay", file=sys.stderr, disable=not show, mininterval=0.5,
               dynamic_ncols=True)
    try:
        old, new = read_sources(baseline), read_sources(candidate)
        summary = replay(_stream_lines(stays), old, new, workers=workers, chunk=chunk,
                         as_of=as_of and as_of.date(), progress=bar.update)
    except RuleError as exc:
        bar.close()
        print_rule_errors(exc, _broken(baseline, candidate))
        sys.exit(1)
    bar.close()
    text = to_markdown(summary)
    if markdown:
        Path(markdown).write_text(text, encoding="utf-8")
    if html:
        Path(html).write_text(to_html(summary), encoding="utf-8")
    click.echo(text)


def _broken(*directories):
    """The first of the libraries that does not load: its errors name files in it."""
    for directory in directories:
        try:
            load_library(directory)
        except RuleError:
            return directory
    return None


def _count_lines(paths) -> int:
    """Lines in the input files, for the bar's total: a fast pass over the bytes before the slow one."""
    n = 0
    for path in paths:
        with open(path, "rb") as f:
            n += sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
    return n


def _stream_lines(paths):
    for path in paths:
        with open(path, "rb") as f:
            yield from f


@rules.command("test")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--fail-under", type=click.FloatRange(0, 100), default=None,
              help="Fail when criterion coverage (each criterion met and not met) is below PCT.")
def rules_test(directory, fail_under) -> None:
    """Run the tests: blocks of every rule file in DIRECTORY, with per-criterion coverage."""
    from ur_engine.authoring.testing import coverage, run_tests

    try:
        lib = load_library(directory)
    except RuleError as exc:
        print_rule_errors(exc, directory)
        sys.exit(1)
    with Engine(lib) as engine:
        outcomes = run_tests(engine, lib)
    failed = [o for o in outcomes if not o.passed]
    for o in failed:
        click.echo(f"FAIL {shown_path(directory, o.test.file)}:{o.test.line} {o.ruleset}: {o.test.name}")
        for p in o.problems:
            click.echo(f"     {p}")
    cov = coverage(lib, outcomes)
    for ruleset, cid, never in cov.gaps():
        click.echo(f"coverage: {ruleset} {cid} never {' nor '.join(never)}")
    click.echo(f"criterion coverage: {cov.percent:.1f}% ({len(cov.seen)} criteria, met and not met)")
    click.echo(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    if failed:
        sys.exit(1)
    if fail_under is not None and cov.percent < fail_under:
        click.echo(f"coverage {cov.percent:.1f}% is under --fail-under {fail_under:g}%", err=True)
        sys.exit(1)
