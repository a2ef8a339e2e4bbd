"""The ``ur`` command: parse arguments, make one library call, format the answer.

Exit codes: 0 success, 1 rule errors or failing rule tests, 2 invalid input (a record, a file, an option).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
import orjson

from . import record as records
from .engine import EVALUATORS, Engine
from .errors import RuleError, RuleErrors, UrError
from .io import default_sources, load_library, read_sources

RULES_HELP = "Rule library directory (default: the rules shipped with ur-engine)."


def _library(rules: str | None):
    try:
        return load_library(rules)
    except RuleError as exc:
        _print_rule_errors(exc)
        sys.exit(1)


def _print_rule_errors(exc: RuleError, rules_dir: str | None = None) -> None:
    errors = exc.errors if isinstance(exc, RuleErrors) else [exc]
    for e in errors:
        click.echo(str(e), err=True)
        caret = _caret(rules_dir, e)
        if caret:
            click.echo(caret, err=True)
    click.echo(f"{len(errors)} error(s)", err=True)


def _caret(rules_dir: str | None, e: RuleError) -> str | None:
    """The offending line of the file with a caret under the column."""
    if not (rules_dir and e.file and e.line):
        return None
    path = Path(rules_dir) / e.file
    try:
        line = path.read_text(encoding="utf-8").splitlines()[e.line - 1]
    except (OSError, IndexError):
        return None
    return f"    {line}\n    {' ' * ((e.column or 1) - 1)}^"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ur-engine")
def main() -> None:
    """ur — open, explainable utilization review."""


@main.command()
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--rules", type=click.Path(file_okay=False), help=RULES_HELP)
@click.option("--evaluator", type=click.Choice(sorted(EVALUATORS)), default="durable", show_default=True,
              help="durable-rules, or the plain-Python reference evaluator.")
@click.option("--summary", is_flag=True, help="One readable line per decision instead of JSON.")
def review(source, rules, evaluator, summary) -> None:
    """Review admission records from SOURCE (a file, or - for standard input).

    One JSON record gives one JSON decision; NDJSON (a record per line) gives one NDJSON line per input line,
    in order. An invalid record gives an error line naming the field, and the exit code is 2.
    """
    engine = Engine(_library(rules), evaluator)
    first = source.readline()
    while first and not first.strip():
        first = source.readline()
    if not first:
        raise click.UsageError("no record on input")
    single = None
    try:
        single = json.loads(first)
    except ValueError:
        pass
    failed = 0
    out = sys.stdout.buffer
    emit = _summary_line if summary else (lambda d: orjson.dumps(d.to_dict(), option=orjson.OPT_APPEND_NEWLINE))
    if single is None:  # one pretty-printed JSON document
        text = first + source.read()
        try:
            decision = engine.review(records.loads(text))
        except UrError as exc:  # the same for one record as for a stream: a message, never a traceback
            _print_record_error(exc)
            sys.exit(2)
        out.write(_summary_line(decision) if summary else
                  orjson.dumps(decision.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
        return
    for number, line in enumerate(_lines(first, source), start=1):
        if not line.strip():
            continue
        try:
            decision = engine.review(records.loads(line))
            out.write(emit(decision))
        except UrError as exc:  # a bad record, or an engine failure on one record: an error line, never a crash
            failed += 1
            out.write(orjson.dumps(_error_line(exc, number, line), option=orjson.OPT_APPEND_NEWLINE))
    out.flush()
    if failed:
        click.echo(f"{failed} record(s) rejected; see the error lines", err=True)
        sys.exit(2)


def _summary_line(d) -> bytes:
    target = f"{d.requested} → {d.recommended or d.supported or '?'}"
    return f"{d.record_id:<14} {d.outcome:<19} {target:<26} {' | '.join(d.reasons)}\n".encode()


def _lines(first: str, rest):
    yield first
    yield from rest


def _record_id(line: str):
    try:
        data = json.loads(line)
        return data.get("id") if isinstance(data, dict) else None
    except ValueError:
        return None


def _error_line(exc: UrError, number: int, line: str) -> dict:
    errors = getattr(exc, "errors", [exc])
    return {"record_id": _record_id(line), "line": number, "outcome": "error",
            "errors": [e.as_dict() for e in errors]}


def _print_record_error(exc: UrError) -> None:
    for e in getattr(exc, "errors", [exc]):
        click.echo(f"invalid record: {e}", err=True)


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="NDJSON decisions, one per input record.")
@click.option("--rules", type=click.Path(file_okay=False), help=RULES_HELP)
@click.option("--workers", type=click.IntRange(1), default=os.cpu_count() or 1, show_default="all cores")
@click.option("--resume", is_flag=True, help="Continue a killed run: keep what OUT holds, review the rest.")
@click.option("--report", type=click.Path(dir_okay=False), help="Also write an HTML report with plots.")
@click.option("--evaluator", type=click.Choice(sorted(EVALUATORS)), default="durable", show_default=True)
def batch(inputs, out, rules, workers, resume, report, evaluator) -> None:
    """Review every record of INPUTS (NDJSON, CSV, Parquet, FHIR Bulk Data) into OUT, in input order.

    Writes OUT.summary.json beside OUT. A record that fails validation gets an error line, never silence.
    """
    from .batch import run_batch

    sources = read_sources(rules) if rules else default_sources()
    bar = _progress_bar(inputs, resume)
    try:
        summary = run_batch(list(inputs), out, sources, workers=workers, resume=resume,
                            progress=bar.update if bar else None, evaluator=evaluator)
    except RuleError as exc:
        _print_rule_errors(exc, rules)
        sys.exit(1)
    except UrError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    finally:
        if bar:
            bar.close()
    if report:
        from .batch_report import to_html

        Path(report).write_text(to_html(summary.to_dict()), encoding="utf-8")
    d = summary.to_dict()
    click.echo(f"{d['total']} records in {d['seconds']} s ({d['per_second']}/s): "
               + ", ".join(f"{k} {v}" for k, v in sorted(d["outcomes"].items())), err=True)


def _progress_bar(inputs, resume: bool):
    """A bar with rate and ETA on a terminal; nothing in a pipe."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    total = None
    if all(str(p).endswith((".ndjson", ".jsonl", ".csv")) for p in inputs):
        total = 0
        for p in inputs:
            with open(p, "rb") as f:
                total += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return tqdm(total=None if resume else total, unit=" stays", file=sys.stderr, dynamic_ncols=True)


@main.group()
def valuesets() -> None:
    """Maintain effective-dated code sets."""


@valuesets.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--into", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The valueset file to update, e.g. rules/valuesets/inpatient-only.yaml.")
@click.option("--effective", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="The date the published list takes effect (e.g. the OPPS calendar year's 1 January).")
@click.option("--status", default="C", show_default=True, help="Status indicator to keep (C: inpatient only).")
def valuesets_import(source, into, effective, status) -> None:
    """Load a CMS OPPS Addendum B (CSV) into a valueset: codes with status indicator C form the IPO list.

    New codes start on --effective, codes that left the list end the day before, earlier history stays.
    """
    import csv

    import yaml

    from .valuesets import merge_import

    with open(source, newline="", encoding="utf-8-sig", errors="replace") as f:
        rows = list(csv.reader(f))
    header = next((i for i, r in enumerate(rows) if any("HCPCS" in c.upper() for c in r)
                   and any(c.strip().upper() == "SI" for c in r)), None)
    if header is None:
        raise click.BadParameter("no header row with 'HCPCS Code' and 'SI' columns", param_hint="SOURCE")
    names = [c.strip().upper() for c in rows[header]]
    code_col = next(i for i, c in enumerate(names) if "HCPCS" in c)
    si_col = names.index("SI")
    text_col = next((i for i, c in enumerate(names) if "DESCRIPTOR" in c), None)
    codes = {r[code_col].strip(): (r[text_col].strip() if text_col is not None else "")
             for r in rows[header + 1:] if len(r) > si_col and r[si_col].strip() == status and r[code_col].strip()}
    path = Path(into)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    merged, counts = merge_import(data, codes, effective.date())
    path.write_text(yaml.safe_dump(merged, sort_keys=False, allow_unicode=True, width=110), encoding="utf-8")
    click.echo(f"{path}: {counts['added']} added, {counts['removed']} ended {effective.date()}, "
               f"{counts['kept']} kept ({len(codes)} codes with status {status} in {source})")


@main.group()
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
            _print_rule_errors(exc, directory)
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
def rules_lint(directory, config, deny_warnings, fmt) -> None:
    """Lint the rule library in DIRECTORY: dead or shadowed criteria, overlapping ranges, unused facts…"""
    import dataclasses

    import yaml

    from .lint import CODES, lint

    lib = _library(directory)
    path = Path(config) if config else Path(directory) / ".ur-lint.yaml"
    levels = {}
    if path.exists():
        levels = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("levels", {})
        # YAML 1.1 reads an unquoted `off` as false.
        levels = {code: "off" if level is False else level for code, level in levels.items()}
    try:
        findings = lint(lib, levels)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=f"{path}") from None
    if fmt == "json":
        click.echo(json.dumps([dataclasses.asdict(f) for f in findings], indent=2))
    else:
        for f in findings:
            click.echo(f"{f}  [{CODES[f.code][1]}]" if f.level == "error" else str(f))
    counts = {lvl: sum(f.level == lvl for f in findings) for lvl in ("error", "warning", "info")}
    click.echo(f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info", err=True)
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
def rules_replay(baseline, candidate, stays, workers, markdown, html, as_of) -> None:
    """Review historical STAYS (NDJSON) under both libraries and report what the edit would change."""
    from .replay import replay
    from .report import to_html, to_markdown

    try:
        old, new = read_sources(baseline), read_sources(candidate)
        summary = replay(_stream_lines(stays), old, new, workers=workers, as_of=as_of and as_of.date())
    except RuleError as exc:
        _print_rule_errors(exc)
        sys.exit(1)
    text = to_markdown(summary)
    if markdown:
        Path(markdown).write_text(text, encoding="utf-8")
    if html:
        Path(html).write_text(to_html(summary), encoding="utf-8")
    click.echo(text)


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
    from .testing import coverage, run_tests

    try:
        lib = load_library(directory)
    except RuleError as exc:
        _print_rule_errors(exc, directory)
        sys.exit(1)
    with Engine(lib) as engine:
        outcomes = run_tests(engine, lib)
    failed = [o for o in outcomes if not o.passed]
    for o in failed:
        click.echo(f"FAIL {o.test.file}:{o.test.line} {o.ruleset}: {o.test.name}")
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


@main.command()
@click.option("--rules", type=click.Path(file_okay=False), help=RULES_HELP)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def serve(rules, host, port) -> None:
    """Serve the review API (embedded: the development server, default rules, localhost).

    SIGHUP or POST /v1/admin/reload re-reads the rules; a candidate serves only if it loads and its tests pass.
    """
    import signal

    from api import create_app

    try:
        app = create_app({"RULES_DIR": rules})
    except UrError as exc:
        _print_rule_errors(exc, rules) if isinstance(exc, RuleError) else click.echo(str(exc), err=True)
        sys.exit(1)
    service = app.extensions["ur_engine"]
    source = (lambda: read_sources(rules)) if rules else default_sources

    def on_hup(signum, frame):
        result = service.reload(source)
        click.echo(f"SIGHUP reload: {'ok ' + result.digest if result.ok else 'refused'}", err=True)
        for line in result.errors:
            click.echo(f"  {line}", err=True)

    signal.signal(signal.SIGHUP, on_hup)
    app.run(host=host, port=port)


@main.group()
def keys() -> None:
    """API keys for the review service: stored hashed, shown once."""


DATABASE_HELP = "Audit store URL (default: $UR_DATABASE_URL, else sqlite:///ur-audit.db)."


def _store(database: str | None):
    from ur_service.db import DEFAULT_URL
    from ur_service.store import Store

    return Store(database or DEFAULT_URL)


@keys.command("create")
@click.option("--role", required=True, type=click.Choice(["reviewer", "physician", "rules_admin"]),
              help="reviewer: submit and read reviews; physician: decide pended cases; rules_admin: reload rules.")
@click.option("--name", help="Who holds the key, as the audit trail shows it (default: the role).")
@click.option("--database", envvar="UR_DATABASE_URL", help=DATABASE_HELP)
def keys_create(role, name, database) -> None:
    """Create an API key for ROLE and print it; only its hash is stored, so it cannot be shown again."""
    from ur_service.auth import create_key

    store = _store(database)
    try:
        key = create_key(store, role, name)
    finally:
        store.close()
    click.echo(key)
    click.echo(f"created key {key.split('_')[1]} ({role}); keep it now, it is not shown again", err=True)


@keys.command("list")
@click.option("--database", envvar="UR_DATABASE_URL", help=DATABASE_HELP)
def keys_list(database) -> None:
    """List key ids, names, roles and dates (never the keys)."""
    store = _store(database)
    try:
        for k in store.list_keys():
            click.echo(f"{k['key_id']}  {k['role']:<12} {k['name']:<24} created {k['created_at']}"
                       + (f"  revoked {k['revoked_at']}" if k["revoked_at"] else ""))
    finally:
        store.close()


@keys.command("revoke")
@click.argument("key_id")
@click.option("--database", envvar="UR_DATABASE_URL", help=DATABASE_HELP)
def keys_revoke(key_id, database) -> None:
    """Revoke the key KEY_ID (the part after ur_); it stops working at once."""
    store = _store(database)
    try:
        if not store.revoke_key(key_id):
            click.echo(f"no active key {key_id}", err=True)
            sys.exit(2)
    finally:
        store.close()
    click.echo(f"revoked {key_id}", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
