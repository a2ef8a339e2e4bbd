"""Benchmark of the engine at its limit: one run, baselines measured beside the figures they qualify.

    python bench/run.py [--count 100000] [--repeat 3] [--rss-counts 100000 1000000] [--seed 7] [--baseline DIR]

Prints: time to load and compile the default rules; `ur batch` stays/s for one process with durable-rules (the
default compact trail, and `--trail full`) and with the plain-Python reference evaluator of the same compiled
plans, and their ratios; with ``--baseline DIR`` (another checkout, e.g. a ``git worktree`` of an earlier
commit), the same run of that checkout's `ur batch` alternating with ours, and our throughput over its;
the floor of one process (JSON in, schema check, durable-rules' calls and JSON out, nothing else) and what
is left of a record's time for our own code; where a warm record's time goes, stage by stage, and the loop with
each record's typed record and facts given (the most a plan from parsed JSON straight to the facts could bring);
scaling from 1 to N worker processes; peak RSS of one process at growing input sizes; `ur review` likewise; and
FHIR in: `ur batch` over whole patient Bundles (``--fhir``, by default the Synthea bundles under tests/data/fhir),
stays/s and the time a stay costs, beside the baseline's.
Not part of the test suite: these machines are shared and noisy, so read ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
UR = [sys.executable, "-m", "ur_engine.cli"]
BAR = 10_000  # stays/s one process should reach end to end (issue #5)


def generate(count: int, seed: int, path: Path) -> Path:
    if not path.exists():
        with path.open("w") as out:
            subprocess.run([sys.executable, str(HERE / "generate.py"), "--count", str(count), "--seed", str(seed)],
                           stdout=out, check=True)
    return path


def measure(args: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB) of one command, its output discarded."""
    timer = ["/usr/bin/time", "-v"] if os.path.exists("/usr/bin/time") else []
    start = time.perf_counter()
    res = subprocess.run(timer + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if res.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(args)} failed:\n{res.stderr[-2000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr)
    return wall, int(rss.group(1)) if rss else -1


def load_and_compile(repeat: int = 5) -> tuple[float, float]:
    """Median seconds to load+check the default library, and to compile it into durable-rules."""
    from ur_engine.evaluation.evaluator import DurableEvaluator
    from ur_engine.intake.rule_files import load_library

    loads, compiles = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        lib = load_library()
        t1 = time.perf_counter()
        ev = DurableEvaluator(lib)
        t2 = time.perf_counter()
        ev.close()
        loads.append(t1 - t0)
        compiles.append(t2 - t1)
    return statistics.median(loads), statistics.median(compiles)


def batch(path: Path, out: Path, workers: int, evaluator: str = "durable", trail: str | None = None,
          checkout: Path | None = None) -> tuple[float, int]:
    """``ur batch`` of this checkout (or of ``checkout``, with its own defaults) on ``path``."""
    extra = ["--trail", trail] if trail else []
    return batch_paths([str(path)], out, checkout, "--workers", str(workers), "--evaluator", evaluator, *extra)


def batch_paths(paths: list[str], out: Path, checkout: Path | None, *options: str) -> tuple[float, int]:
    for suffix in ("", ".state.json", ".summary.json"):
        Path(str(out) + suffix).unlink(missing_ok=True)
    args = UR + ["batch", *paths, "--out", str(out), *options]
    return measure(args if checkout is None else ["env", "--chdir", str(checkout), f"PYTHONPATH={checkout}", *args])


def floor(data: Path, out: Path, count: int, repeat: int = 3) -> tuple[float, float, float]:
    """µs a record spends, on the first ``count`` records, in what no engine over durable-rules avoids.

    (JSON in + schema check; durable-rules' calls — assert, drain, retract — on the very facts the engine
    asserted; JSON out of the lines ``ur batch`` wrote to ``out``), each timed alone, median of ``repeat`` rounds.
    """
    import orjson

    from ur_engine import schemas

    from ur_engine.evaluation import evaluator
    from ur_engine.engine import Engine
    from ur_engine.intake.rule_files import load_library

    with data.open("rb") as f:
        lines = list(itertools.islice(f, count))
    with out.open("rb") as f:
        decisions = [orjson.loads(line) for line in itertools.islice(f, count)]
    calls, real = [], evaluator._run

    def recorded(handle: int, fact_id: int, body: str) -> dict:
        calls.append((handle, fact_id, body))
        return real(handle, fact_id, body)

    evaluator._run = recorded  # the facts exactly as the engine encodes and asserts them
    try:
        with Engine(load_library()) as engine:
            for line in lines:
                engine.review(orjson.loads(line))
            valid = schemas.fast_validator("admission").is_valid
            rounds = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                for line in lines:
                    valid(orjson.loads(line))
                t1 = time.perf_counter()
                for call in calls:
                    real(*call)
                t2 = time.perf_counter()
                for d in decisions:
                    orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE)
                t3 = time.perf_counter()
                rounds.append((t1 - t0, t2 - t1, t3 - t2))
    finally:
        evaluator._run = real
    return tuple(statistics.median(r[k] for r in rounds) / len(lines) * 1e6 for k in range(3))


def stages(data: Path, count: int, repeat: int = 3) -> tuple[dict[str, float], float]:
    """Where a record's time goes in one process, warm (µs a record, median of ``repeat`` rounds over the first
    ``count`` records), and the same loop with each record's typed record and facts worked out beforehand.

    The second figure is what any plan from parsed JSON straight to the facts could reach at best: it times every
    stage but those two, as if they cost nothing.
    """
    import orjson
    from ulid import ULID

    from ur_engine.batch.runner import BatchSummary, _stay
    from ur_engine.decision import decide
    from ur_engine.engine import Engine
    from ur_engine.intake.normalise import admit
    from ur_engine.intake.rule_files import load_library

    with data.open("rb") as f:
        lines = list(itertools.islice(f, count))
    names = ("JSON in", "typed record", "rule-set choice", "facts", "durable-rules and results", "decision",
             "compact trail", "batch summary", "JSON out")
    library = load_library()
    pc = time.perf_counter
    with Engine(library) as engine:
        facts_of = library.facts

        def once(given: list | None, keep: bool = False) -> tuple[list[float], list]:
            spent = [0.0] * len(names)
            kept, summary = [], BatchSummary()
            for n, line in enumerate(lines):
                t0 = pc()
                raw = orjson.loads(line)
                t1 = pc()
                adm = admit(raw, facts_of) if given is None else given[n][0]
                t2 = pc()
                rulesets = library.applicable(adm, None)
                keys, needed, waived = engine.combination(rulesets)
                t3 = pc()
                facts = facts_of.derive(adm, needed) if given is None else given[n][1]
                t4 = pc()
                found = engine.evaluator.evaluate_many(keys, facts.values, waived)
                t5 = pc()
                d = decide(adm, library, [(rs, found[k]) for rs, k in zip(rulesets, keys)], facts, str(ULID()),
                           waived)
                t6 = pc()
                out = d.to_dict("compact")
                out["position"], out["stay"] = str(n), _stay(adm.encounter)
                t7 = pc()
                summary.add(out)
                t8 = pc()
                orjson.dumps(out, option=orjson.OPT_APPEND_NEWLINE)
                t9 = pc()
                for i, (a, b) in enumerate(itertools.pairwise((t0, t1, t2, t3, t4, t5, t6, t7, t8, t9))):
                    spent[i] += b - a
                if keep:
                    kept.append((adm, facts))
            return [x / len(lines) * 1e6 for x in spent], kept

        _, given = once(None, keep=True)  # warm: patterns, verdicts and words are worked out once
        # The records kept for the second loop would otherwise make every collection of the first walk them all.
        gc.freeze()
        rounds, free = [], []
        try:
            for _ in range(repeat):
                rounds.append(once(None)[0])
                spent, _ = once(given)
                free.append(sum(spent) - spent[1] - spent[3])
        finally:
            gc.unfreeze()
    split = {name: statistics.median(r[i] for r in rounds) for i, name in enumerate(names)}
    return split, statistics.median(free)


def fhir_in(targets: list[Path], out: Path, repeat: int, baseline: Path | None, copies: int) -> None:
    """`ur batch` over patient Bundles: a patient's whole record (years of visits) is read to find its stays.

    Each Bundle is given ``copies`` times (links under other names), so that start-up does not hide the rest.
    """
    found = [f for t in targets for f in ([t] if t.is_file() else sorted(t.iterdir()))
             if f.name.endswith((".json", ".json.gz"))]
    if not found:
        return
    bundles = []
    for n in range(copies):
        for f in found:
            link = out.parent / f"copy{n}-{f.name}"
            if not link.exists():
                link.symlink_to(f.resolve())
            bundles.append(str(link))
    checkouts: list[Path | None] = [None, baseline.resolve()] if baseline else [None]
    walls: dict[Path | None, list[float]] = {c: [] for c in checkouts}
    for _ in range(repeat):
        for c in checkouts:
            walls[c].append(batch_paths(bundles, out, c, "--workers", "1")[0])
    stays = sum(1 for _ in open(out, "rb"))
    print(f"\nFHIR in: ur batch over {len(found)} patient Bundles × {copies} ({stays} stays), one process, median of "
          f"{repeat} (start-up included):")
    for c in checkouts:
        wall = statistics.median(walls[c])
        print(f"  {'this checkout' if c is None else f'baseline {c}'}: {wall:.2f} s, {stays / wall:.1f} stays/s, "
              f"{wall / max(stays, 1) * 1000:.0f} ms a stay")
    if baseline:
        ratio = statistics.median(walls[checkouts[1]]) / statistics.median(walls[None])
        print(f"  this checkout / baseline: {ratio:.2f}× the stays/s")
    export = bulk_export(found, copies, out.parent / "bulk")
    print(f"FHIR Bulk export of the same patients ({sum(f.stat().st_size for f in export.iterdir()) >> 20} MiB of "
          f"NDJSON), one process, median of {repeat}:")
    for c in checkouts:
        runs = [batch_paths([str(export)], out, c, "--workers", "1") for _ in range(repeat)]
        wall, peak = statistics.median(w for w, _ in runs), max(p for _, p in runs)
        print(f"  {'this checkout' if c is None else f'baseline {c}'}: {wall:.2f} s, {stays / wall:.1f} stays/s, "
              f"peak RSS {peak / 1024:.0f} MiB")


def bulk_export(bundles: list[Path], copies: int, folder: Path) -> Path:
    """The patients of ``bundles``, ``copies`` times over under other ids, as a Bulk Data export (one NDJSON file
    per resource type, references as Type/id)."""
    import gzip
    import json

    def relink(node, names: dict[str, str]) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "reference" and isinstance(v, str) and v in names:
                    node[k] = names[v]
                else:
                    relink(v, names)
        elif isinstance(node, list):
            for v in node:
                relink(v, names)

    folder.mkdir(exist_ok=True)
    files: dict = {}  # resource type -> its open file
    for f in bundles:
        text = (gzip.open(f) if f.name.endswith(".gz") else f.open("rb")).read()
        for n in range(copies):
            entries = json.loads(text)["entry"]
            names = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}-{n}"
                     for e in entries if "fullUrl" in e}
            for e in entries:
                r = e["resource"]
                r["id"] = f"{r['id']}-{n}"
                relink(r, names)
                out = files.get(r["resourceType"]) or files.setdefault(
                    r["resourceType"], (folder / f"{r['resourceType']}.ndjson").open("w"))
                out.write(json.dumps(r) + "\n")
    for out in files.values():
        out.close()
    return folder


def main() -> None:
    if sys.argv[1:2] == ["--stages"]:  # run by main itself, in a fresh process: see stages()
        print(json.dumps(stages(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100_000, help="records for the throughput runs")
    ap.add_argument("--rss-counts", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3, help="alternating rounds of the throughput runs")
    ap.add_argument("--baseline", type=Path, help="another checkout whose `ur batch` to measure alongside")
    ap.add_argument("--fhir", type=Path, nargs="+", default=[HERE.parent / "tests" / "data" / "fhir" / "synthea"],
                    help="FHIR Bundles (files, or folders of *.json / *.json.gz) for the FHIR-in figure")
    ap.add_argument("--fhir-copies", type=int, default=20, help="times each of those Bundles is given")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    print(f"machine: {cores} cores; python {sys.version.split()[0]}")
    load_s, compile_s = load_and_compile()
    print(f"load + check default rules: {load_s * 1000:.0f} ms; compile into durable-rules: {compile_s * 1000:.0f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = generate(args.count, args.seed, tmp / f"stays-{args.count}.ndjson")
        out = tmp / "out.ndjson"
        # Runs alternate, round after round: a slow spell of this shared machine then hits every configuration
        # alike rather than one of them. Each figure is the median of its rounds (best in brackets).
        configs = [("durable", 1), ("reference", 1), *(("durable", w) for w in sorted({2, cores})), ("full", 1)]
        if args.baseline:
            configs.append(("baseline", 1))
        runs: dict[tuple, list[float]] = {c: [] for c in configs}
        rss: dict[tuple, int] = {}
        for _ in range(args.repeat):
            for evaluator, workers in configs:
                if evaluator == "full":
                    wall, peak = batch(data, out, workers, "durable", trail="full")
                elif evaluator == "baseline":
                    wall, peak = batch(data, out, workers, checkout=args.baseline.resolve())
                else:
                    wall, peak = batch(data, out, workers, evaluator)
                runs[(evaluator, workers)].append(args.count / wall)
                rss[(evaluator, workers)] = max(rss.get((evaluator, workers), 0), peak)
        rate = {c: statistics.median(r) for c, r in runs.items()}
        best = {c: max(r) for c, r in runs.items()}
        print(f"\nur batch, {args.count} records, median of {args.repeat} alternating rounds (best in brackets)")
        print("one process:")
        for evaluator in ("durable", "reference"):
            c = (evaluator, 1)
            print(f"  {evaluator:>9}: {rate[c]:8.0f} stays/s  [{best[c]:.0f}]  peak RSS {rss[c] / 1024:.0f} MiB")
        d, r, f = ("durable", 1), ("reference", 1), ("full", 1)
        print(f"  reference / durable: {rate[r] / rate[d]:.2f}×  [{best[r] / best[d]:.2f}×]")
        print(f"  --trail full: {rate[f]:8.0f} stays/s  [{best[f]:.0f}]  peak RSS {rss[f] / 1024:.0f} MiB")
        if args.baseline:
            b = ("baseline", 1)
            print(f"  baseline {args.baseline}: {rate[b]:8.0f} stays/s  [{best[b]:.0f}]; this checkout / baseline: "
                  f"{rate[d] / rate[b]:.2f}×  [{best[d] / best[b]:.2f}×]")
        json_in, engine, json_out = floor(data, out, min(args.count, 20_000))
        least = json_in + engine + json_out
        spent = 1e6 / rate[d]
        print(f"  floor: JSON in + schema {json_in:.1f} µs, durable-rules (assert, drain, retract) {engine:.1f} µs, "
              f"JSON out {json_out:.1f} µs = {least:.1f} µs a record, at most {1e6 / least:.0f} stays/s")
        print(f"  one process spends {spent:.0f} µs a record end to end (start-up included): {spent - least:.0f} µs "
              f"in our code (record, rule-set choice, facts, decision, trail); {BAR:,} stays/s would leave it "
              f"{1e6 / BAR - least:.0f} µs")
        print(f"  end to end over the floor: {spent / least:.1f}× compact, {1e6 / rate[f] / least:.1f}× --trail full")
        # In a process of its own: this one holds what the runs above left, which every collection would walk.
        found = subprocess.run([sys.executable, __file__, "--stages", str(data), str(min(args.count, 20_000)),
                                str(args.repeat)], capture_output=True, text=True, check=True)
        split, free = json.loads(found.stdout)
        warm = sum(split.values())
        print(f"  in one process, warm ({min(args.count, 20_000)} records): {warm:.0f} µs a record = "
              f"{1e6 / warm:.0f} stays/s; " + ", ".join(f"{name} {us:.1f}" for name, us in split.items()))
        planned = spent - (warm - free)
        print(f"  the same loop with the typed record and the facts given (a plan from JSON straight to the facts "
              f"at best): {free:.0f} µs = {1e6 / free:.0f} stays/s; end to end, {warm - free:.0f} µs fewer: "
              f"{planned:.0f} µs a record = {1e6 / planned:.0f} stays/s, {planned / least:.1f}× the floor")
        print("scaling (durable):")
        for evaluator, workers in configs:
            if evaluator == "durable":
                c = (evaluator, workers)
                print(f"  {workers} process(es): {rate[c]:8.0f} stays/s  [{best[c]:.0f}]  "
                      f"{rate[c] / rate[d]:.2f}× one process  [{best[c] / best[d]:.2f}×]")
        print("\npeak RSS of one process (ur batch --workers 1, durable):")
        for count in args.rss_counts:
            path = generate(count, args.seed, tmp / f"stays-{count}.ndjson")
            wall, peak = batch(path, out, 1)
            print(f"  {count:>9} records: {peak / 1024:6.1f} MiB  ({count / wall:.0f} stays/s)")
        fhir_in(args.fhir, out, args.repeat, args.baseline, args.fhir_copies)
        print("\nur review (one process, NDJSON in and out):")
        for evaluator in ("durable", "reference"):
            wall, rss = measure(UR + ["review", "--evaluator", evaluator, str(data)])
            print(f"  {evaluator:>9}: {args.count / wall:8.0f} records/s, peak RSS {rss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
