"""What the intake makes of a folder of real FHIR data: stays reviewed and skipped, codes read by system, notices.

    python bench/corpus.py /work/shared/corpus/synthea-r4 [more folders or files…] [--json]

Each folder is read as the batch would read it: a Bulk Data export (NDJSON files by resource type) as one input,
otherwise every Bundle (``*.json``, ``*.json.gz``) in it as an input of its own. Nothing is reviewed: the figures
are the intake's — how many stays came out, how many of those validate, how many visits were skipped and why,
the diagnosis, procedure and observation codes read by code system, and the values set aside by reason.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from ur_engine import record
from ur_engine.errors import RecordError
from ur_engine.intake.fhir_files import EXPORT_FILE
from ur_engine.intake.readers import detect_format, read_items


def inputs_of(target: Path) -> list[str]:
    if target.is_file():
        return [str(target)]
    if any(EXPORT_FILE.match(p.name) for p in target.iterdir()):
        return [str(target)]
    found = []
    for p in sorted(target.iterdir()):
        if p.name.endswith((".json", ".json.gz")) and detect_format(str(p)) in ("bundle", "fhir"):
            found.append(str(p))
    return found


def measure(paths: list[str]) -> dict:
    started = time.perf_counter()
    stream = read_items(paths)
    stays = valid = 0
    errors: Counter[str] = Counter()
    invalid: Counter[str] = Counter()
    codes = {"diagnoses": Counter(), "procedures": Counter(), "observations": Counter()}
    in_records: Counter[str] = Counter()
    for item in stream:
        if item.error is not None:
            errors[item.error.message.split(":")[0][:80]] += 1
            continue
        stays += 1
        rec = item.record
        for section, counter in codes.items():
            for entry in rec.get(section) or []:
                counter[entry.get("system", "loinc" if section == "observations" else "icd10cm")] += 1
        for n in rec.get("data_notices", []):
            in_records[n["why"].split(":")[0]] += 1
        try:
            record.parse(rec)
            valid += 1
        except RecordError as exc:
            for e in getattr(exc, "errors", [exc]):
                invalid[e.path] += 1
    return {
        "inputs": len(paths), "seconds": round(time.perf_counter() - started, 2),
        "stays": stays, "stays_valid": valid, "stays_invalid_by_field": dict(invalid.most_common()),
        "error_items": dict(errors.most_common()),
        "skipped": dict(stream.skipped.most_common()), "skipped_total": sum(stream.skipped.values()),
        "codes": {k: dict(v.most_common()) for k, v in codes.items()},
        "notices_in_records": dict(in_records.most_common()),
        "left_out": dict(stream.ignored.most_common()), "orphans": stream.orphans,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="+", type=Path, help="corpus folders or files")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args(argv)
    paths = [p for t in args.targets for p in inputs_of(t)]
    if not paths:
        print("no FHIR input found", file=sys.stderr)
        return 2
    figures = measure(paths)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{figures['inputs']} inputs read in {figures['seconds']} s")
    print(f"stays: {figures['stays']} ({figures['stays_valid']} valid records)  "
          f"visits skipped: {figures['skipped_total']}  error items: {sum(figures['error_items'].values())}")
    for title, key in (("records failing validation, by field", "stays_invalid_by_field"),
                       ("error items", "error_items"), ("skipped", "skipped"),
                       ("notices in records, by reason", "notices_in_records"),
                       ("resources left out", "left_out")):
        if figures[key]:
            print(f"{title}:")
            for k, v in figures[key].items():
                print(f"  {v:>7}  {k}")
    for section, by_system in figures["codes"].items():
        print(f"{section} codes by system: " + (", ".join(f"{k} {v}" for k, v in by_system.items()) or "none"))
    print(f"orphans (linked to no encounter of the source): {figures['orphans']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
