"""The ``ur`` command: parse arguments, make one library call, format the answer.

Exit codes: 0 success, 1 rule errors or failing rule tests, 2 invalid input (a record, a file, an option).
Commands of other installed packages join through the ``ur_engine.commands`` entry point group (the review
service adds ``serve`` and ``keys``), so this package never imports them.
"""

from __future__ import annotations

import json
import os
import sys
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, TypeGuard

import click
import orjson

from ur_engine import record as records
from ur_engine.cli.common import RULES_HELP, print_rule_errors
from ur_engine.cli.common import library_or_exit as _library
from ur_engine.cli.rules import rules
from ur_engine.engine import EVALUATORS, Engine
from ur_engine.errors import RuleError, UrError
from ur_engine.intake.normalise import admit
from ur_engine.intake.normalise import review as review_record
from ur_engine.stay_days import review_by_day
from ur_engine.intake.rule_files import default_sources, read_sources

STRICT_HELP = "Reject a record with any invalid value, instead of setting the value aside with a notice."
AS_OF_HELP = "Judge every stay by the rules in effect on this day (default: each stay's arrival date)."
TRAIL_HELP = ("full: every criterion with its text, source and evidence; compact: criterion ids by status and "
              "each fact once, rebuilt in full by `ur expand`.")
BY_DAY_HELP = ("Also judge every day of care of the stay (24 h from arrival, up to discharge) and report where the "
               "supported level rises or falls (the decision's by_day).")


@cache
def _plugins() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group="ur_engine.commands")}


class _Commands(click.Group):
    """The engine's own commands, then those that other installed packages register."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_plugins()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in _plugins():
            command = _plugins()[name].load()
        return command


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ur-engine")
def main() -> None:
    """ur — open, explainable utilization review."""


@main.command()
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--rules", type=click.Path(file_okay=False), help=RULES_HELP)
@click.option("--evaluator", type=click.Choice(sorted(EVALUATORS)), default="durable", show_default=True,
              help="durable-rules, or the plain-Python reference evaluator.")
@click.option("--summary", is_flag=True, help="One readable line per decision instead of JSON.")
@click.option("--strict", is_flag=True, help=STRICT_HELP)
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None, help=AS_OF_HELP)
@click.option("--trail", type=click.Choice(["full", "compact"]), default="full", show_default=True, help=TRAIL_HELP)
@click.option("--by-day", is_flag=True, help=BY_DAY_HELP)
def review(source, rules, evaluator, summary, strict, as_of, trail, by_day) -> None:
    """Review admission records from SOURCE (a file, or - for standard input).

    One JSON record gives one JSON decision; NDJSON (a record per line) gives one NDJSON line per input line,
    in order. A FHIR Bundle gives one NDJSON line per hospital stay it holds. A value that cannot be read is set
    aside and named in the decision's data_notices; a record with nothing to judge gives an error line naming the
    field, and the exit code is 2.
    """
    engine = Engine(_library(rules), evaluator)
    day = as_of.date() if as_of else None

    def judge(record):
        data = records.loads(record) if isinstance(record, str) else record
        if by_day:
            return review_by_day(engine, admit(data, engine.library.facts, strict=strict), as_of=day)
        return review_record(engine, data, strict=strict, as_of=day)

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
    emit = _summary_line if summary else (lambda d: orjson.dumps(d.to_dict(trail), option=orjson.OPT_APPEND_NEWLINE))
    if single is None:  # one pretty-printed JSON document
        text = first + source.read()
        try:
            single = json.loads(text)
        except ValueError:
            single = None
        if _is_bundle(single):
            _review_bundle(judge, single, source.name, emit)
            return
        try:
            decision = judge(text)
        except UrError as exc:  # the same for one record as for a stream: a message, never a traceback
            _print_record_error(exc)
            sys.exit(2)
        out.write(_summary_line(decision) if summary else
                  orjson.dumps(decision.to_dict(trail), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
        return
    if _is_bundle(single):
        _review_bundle(judge, single, source.name, emit)
        return
    for number, line in enumerate(_lines(first, source), start=1):
        if not line.strip():
            continue
        try:
            decision = judge(line)
            out.write(emit(decision))
        except UrError as exc:  # a bad record, or an engine failure on one record: an error line, never a crash
            failed += 1
            out.write(orjson.dumps(_error_line(exc, number, line), option=orjson.OPT_APPEND_NEWLINE))
    out.flush()
    if failed:
        click.echo(f"{failed} record(s) rejected; see the error lines", err=True)
        sys.exit(2)


def _is_bundle(doc: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(doc, dict) and doc.get("resourceType") == "Bundle"


def _review_bundle(judge, doc: dict, name: str, emit) -> None:
    """One decision line per stay of a FHIR Bundle; an error line for each stay that cannot be reviewed."""
    from ur_engine.errors import RecordError
    from ur_engine.intake.fhir_files import bundle_items

    failed = 0
    out = sys.stdout.buffer
    for item in bundle_items(doc, Path(name).name if name and name != "<stdin>" else "<stdin>"):
        try:
            if item.error is not None:
                raise item.error
            out.write(emit(judge(item.record)))
        except RecordError as exc:
            failed += 1
            rid = item.record.get("id") if item.record else item.record_id
            line = {"record_id": rid, "position": item.position, "outcome": "error",
                    "errors": [e.as_dict() for e in getattr(exc, "errors", [exc])]}
            if item.record and item.record.get("data_notices"):  # what was set aside says why a field is missing
                line["data_notices"] = item.record["data_notices"]
            out.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
    out.flush()
    if failed:
        click.echo(f"{failed} stay(s) rejected; see the error lines", err=True)
        sys.exit(2)


def _late_escalations_line(by_day: dict | None, out: str) -> str:
    """The closing line of a day-by-day batch: the stays whose level rose after day 1, the first one named."""
    if not by_day:
        return "by day: no stay was judged day by day"
    late, up, down = by_day["late_escalations"], by_day["escalations"], by_day["de_escalations"]
    line = (f"by day: {late['stays']} late escalation(s) in {by_day['stays']} stay(s), the supported level rising "
            f"after day 1")
    if late["examples"]:
        e = late["examples"][0]
        line += f" (first: {e['record_id']}, day {e['day']}, {e['from'] or 'none'} → {e['to'] or 'none'})"
    return line + f"; {up['count']} escalation(s), {down['count']} de-escalation(s) in all (see {out}.summary.json)"


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
@click.option("--strict", is_flag=True, help=STRICT_HELP)
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None, help=AS_OF_HELP)
@click.option("--trail", type=click.Choice(["compact", "full"]), default="compact", show_default=True,
              help=TRAIL_HELP)
@click.option("--format", "fmt", type=click.Choice(["decisions", "fhir"]), default="decisions", show_default=True,
              help="fhir: OUT holds FHIR Bulk Data NDJSON, one PAS ClaimResponse per stay, and records that could "
                   "not be reviewed go to OUT's OperationOutcome file; the decisions stay in OUT.decisions.ndjson.")
@click.option("--by-day", is_flag=True, help=BY_DAY_HELP)
def batch(inputs, out, rules, workers, resume, report, evaluator, strict, as_of, trail, fmt, by_day) -> None:
    """Review every record of INPUTS (NDJSON, CSV, Parquet, FHIR Bulk Data) into OUT, in input order.

    Writes OUT.summary.json beside OUT. A record with nothing to judge gets an error line, never silence, and
    the exit code is 2; values set aside are counted in the summary. Exit 1 on rule errors.
    """
    from ur_engine.batch.runner import run_batch

    sources = read_sources(rules) if rules else default_sources()
    decisions = out if fmt == "decisions" else out + ".decisions.ndjson"
    if fmt == "fhir" and not resume and Path(out).exists() and Path(out).stat().st_size:
        click.echo(f"{out} exists: pass --resume to continue it, or remove it", err=True)
        sys.exit(2)
    bar = _progress_bar(inputs, resume)
    try:
        summary = run_batch(list(inputs), decisions, sources, workers=workers, resume=resume,
                            progress=bar.update if bar else None, evaluator=evaluator, strict=strict,
                            as_of=as_of.date() if as_of else None, trail=trail, by_day=by_day)
    except RuleError as exc:
        print_rule_errors(exc, rules)
        sys.exit(1)
    except UrError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    finally:
        if bar:
            bar.close()
    if fmt == "fhir":
        os.replace(decisions + ".summary.json", out + ".summary.json")  # where the summary always is
        written = _write_fhir(decisions, out, rules)
        click.echo(", ".join(f"{n} {kind}" for kind, n in written.items()) + f" written to {out}"
                   + (f" and {_outcomes_path(out)}" if written.get("OperationOutcome") else ""), err=True)
    if report:
        from ur_engine.batch.report import to_html

        Path(report).write_text(to_html(summary.to_dict()), encoding="utf-8")
    d = summary.to_dict()
    click.echo(f"{d['total']} records in {d['seconds']} s ({d['per_second']}/s): "
               + ", ".join(f"{k} {v}" for k, v in sorted(d["outcomes"].items())), err=True)
    if by_day:
        click.echo(_late_escalations_line(d.get("by_day"), out), err=True)
    if d["visits_skipped"]:
        click.echo(f"{sum(d['visits_skipped'].values())} visit(s) that are not hospital stays skipped: "
                   + ", ".join(f"{k} {v}" for k, v in d["visits_skipped"].items()), err=True)
    intake = d["intake"]
    if intake["values_set_aside"] or intake["codes_mapped"] or intake["codes_unread"]:
        click.echo(f"intake: {sum(intake['values_set_aside'].values())} value(s) set aside, "
                   f"{sum(intake['codes_mapped'].values())} code(s) mapped, "
                   f"{sum(intake['codes_unread'].values())} code(s) read by no rule (see {out}.summary.json)", err=True)
    if d["duplicate_record_ids"]["count"]:
        first = d["duplicate_record_ids"]["first"][0]
        click.echo(f"{d['duplicate_record_ids']['count']} record id(s) appear more than once "
                   f"(first: {first[0]}, {first[2]} times)", err=True)
    if summary.errors:
        click.echo(f"{summary.errors} record(s) rejected; see the error lines", err=True)
        sys.exit(2)


@main.command()
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--rules", type=click.Path(file_okay=False), help=RULES_HELP)
def expand(source, rules) -> None:
    """Rebuild the full trail of compact decision lines from SOURCE (NDJSON, or - for standard input).

    Each line's criteria come back with their text, source and evidence, exactly as `--trail full` writes them,
    from the rules that judged it: give those rules (the default library, or --rules DIR) — a line whose
    rules.digest differs is an error line, and the exit code is 2. Full lines and error lines pass unchanged.
    """
    from ur_engine.output.trail import expand as expand_line

    library = _library(rules)
    out, failed = sys.stdout.buffer, 0
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            d = orjson.loads(line)
            out.write(orjson.dumps(expand_line(d, library), option=orjson.OPT_APPEND_NEWLINE))
        except (orjson.JSONDecodeError, UrError, KeyError, TypeError, AttributeError) as exc:
            failed += 1
            why = str(exc) if isinstance(exc, UrError) else f"not a decision line ({type(exc).__name__}: {exc})"
            out.write(orjson.dumps({"position": f"{source.name}:{number}", "outcome": "error",
                                    "errors": [{"message": why}]}, option=orjson.OPT_APPEND_NEWLINE))
    if failed:
        click.echo(f"{failed} line(s) could not be expanded; see the error lines", err=True)
        sys.exit(2)


def _outcomes_path(out: str) -> str:
    """Bulk Data keeps one resource type per file: the OperationOutcomes go beside OUT."""
    path = Path(out)
    stem = path.name[:-len(".ndjson")] if path.name.endswith(".ndjson") else path.name
    return str(path.with_name(f"{stem}.OperationOutcome.ndjson"))


def _write_fhir(decisions: str, out: str, rules: str | None) -> dict[str, int]:
    """OUT as Bulk Data NDJSON of ClaimResponses (one per stay, in input order) from the decisions file; the
    records that could not be reviewed as OperationOutcomes beside it. Each file is written whole, then moved
    into place: a killed run leaves the last complete one."""
    from datetime import datetime, timezone

    from ur_engine.output.claim_response import bulk_resource
    from ur_engine.output.trail import expand as expand_line

    library = _library(rules)
    facts = library.facts  # the evidence in words
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    targets = {"ClaimResponse": out, "OperationOutcome": _outcomes_path(out)}
    counts = {kind: 0 for kind in targets}
    files = {kind: open(path + ".part", "wb") for kind, path in targets.items()}
    try:
        with open(decisions, "rb") as lines:
            for line in lines:
                if line.strip():  # a compact line's trail comes back in full for the processNote
                    kind, resource = bulk_resource(orjson.dumps(expand_line(orjson.loads(line), library)), created,
                                                   facts)
                    files[kind].write(orjson.dumps(resource) + b"\n")
                    counts[kind] += 1
    finally:
        for f in files.values():
            f.close()
    for kind, path in targets.items():
        if counts[kind] or kind == "ClaimResponse":
            os.replace(path + ".part", path)
        else:
            os.remove(path + ".part")
    return {kind: n for kind, n in counts.items() if n or kind == "ClaimResponse"}


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

    from ur_engine.terminology.valuesets import merge_import

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


main.add_command(rules)


if __name__ == "__main__":  # pragma: no cover
    main()
