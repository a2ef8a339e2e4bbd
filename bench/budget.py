"""Where a record's time goes, in machine instructions: each stage of `ur batch` against the floor.

    python bench/budget.py [--measure 500] [--warm 1000] [--seed 7]

Runs the batch pipeline in child processes under valgrind's callgrind, which counts the instructions executed:
the same count for the same code and input whatever else the machine is doing, so stages a few per cent apart are
told apart on a busy shared machine where timings are not. Each stage is the difference between a child that stops
after it and one that stops before it, on ``--measure`` generated records after ``--warm`` others have filled the
caches (rule-set combinations, verdicts, words), as in a long batch.

The floor is what no engine over durable-rules avoids: JSON in, the schema check, durable-rules' own calls on the
facts the engine asserts (recorded, then replayed), JSON out. The issue's bar (10,000 stays/s in one process) is
read as at most 2.5× the floor; the table gives our instructions over the floor's, and what the bar leaves our
code. Needs valgrind (Debian's package); each child takes ~40 s under it.
"""

from __future__ import annotations

import argparse
import itertools
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Stages of one record in `ur batch` (compact trail), in order; a child given stage k runs stages 0..k.
STAGES = ("JSON in", "intake: normalise, schema check, typed record", "rule-set choice", "facts", "evaluate",
          "decision", "output dict (compact trail)", "batch summary", "JSON out")
FLOOR = ("JSON in", "schema check", "durable-rules calls", "JSON out")


def child(kind: str, k: int, data: Path, warm: int, measure: int) -> None:
    """Run in a child process (under callgrind): warm up, then ``kind``'s work up to ``k`` on the measured records."""
    import orjson

    from ur_engine import schemas
    from ur_engine.batch.runner import BatchSummary, _stay
    from ur_engine.decision import decide
    from ur_engine.engine import Engine
    from ur_engine.evaluation import evaluator
    from ur_engine.intake.normalise import admit
    from ur_engine.intake.rule_files import load_library

    lib = load_library()
    engine = Engine(lib)
    facts_dict = lib.facts
    with data.open("rb") as f:
        lines = list(itertools.islice(f, warm + measure))
    calls: list[tuple[int, int, str]] = []
    recording = [False]
    real_run = evaluator._run

    def run(handle: int, fact_id: int, body: str) -> dict:
        if recording[0]:
            calls.append((handle, fact_id, body))
        return real_run(handle, fact_id, body)

    evaluator._run = run

    def pipeline(batch: list[bytes], upto: int) -> list[dict]:
        summary, out = BatchSummary(), []
        for line in batch:
            data_ = orjson.loads(line)
            if upto < 1:
                continue
            adm = admit(data_, facts_dict)
            if upto < 2:
                continue
            rulesets = lib.applicable(adm, None)
            keys, needed, waived = engine.combination(rulesets)
            if upto < 3:
                continue
            facts = facts_dict.derive(adm, needed)
            if upto < 4:
                continue
            found = engine.evaluator.evaluate_many(keys, facts.values, waived)
            results = [(rs, found[key]) for rs, key in zip(rulesets, keys)]
            if upto < 5:
                continue
            decision = decide(adm, lib, results, facts, "01J00000000000000000000000", waived)
            if upto < 6:
                continue
            d = decision.to_dict("compact")
            d["position"], d["stay"] = "0", _stay(adm.encounter)
            out.append(d)
            if upto < 7:
                continue
            summary.add(d)
            if upto < 8:
                continue
            orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE)
        return out

    warm_lines, measured = lines[:warm], lines[warm:]
    pipeline(warm_lines, len(STAGES))
    if kind == "stage":
        if k >= 0:
            pipeline(measured, k)
        return
    # The floor's parts, each alone on what the pipeline gave the measured records.
    recording[0] = True
    decisions = pipeline(measured, 6)
    recording[0] = False
    valid = schemas.fast_validator("admission").is_valid
    parsed = [orjson.loads(line) for line in measured] if k in (1, 4) else []
    if k == 0:
        for line in measured:
            orjson.loads(line)
    elif k == 1:
        for record in parsed:
            valid(record)
    elif k == 2:
        for call in calls:
            real_run(*call)
    elif k == 3:
        for d in decisions:
            orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE)
    elif k == 4:  # the baseline of k == 1: the same parse, without the check
        pass


def instructions(args: list[str]) -> int:
    res = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                          *args], capture_output=True, text=True, cwd=ROOT, env=_env())
    found = re.search(r"Collected : (\d+)", res.stderr)
    if res.returncode != 0 or not found:
        raise SystemExit(f"callgrind run failed:\n{res.stderr[-2000:]}")
    return int(found.group(1))


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measure", type=int, default=500, help="records measured")
    ap.add_argument("--warm", type=int, default=1000, help="records reviewed first, to fill the caches")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.data, args.warm, args.measure)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("bench/budget.py needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "stays.ndjson"
        with data.open("w") as out:
            subprocess.run([sys.executable, str(HERE / "generate.py"), "--count", str(args.warm + args.measure),
                            "--seed", str(args.seed)], stdout=out, check=True)
        me = [str(Path(__file__).resolve()), "--data", str(data), "--warm", str(args.warm),
              "--measure", str(args.measure), "--child"]
        per = args.measure
        instructions([*me, "stage", "-1"])  # fills the library cache: every child after it reads the library back
        base = instructions([*me, "stage", "-1"])
        stages, before = [], base
        for k, name in enumerate(STAGES):
            now = instructions([*me, "stage", str(k)])
            stages.append((name, (now - before) / per))
            before = now
            print(f"  {name}: {stages[-1][1]:,.0f}", file=sys.stderr)
        floor_base = instructions([*me, "floor", "-1"])
        parse_only = instructions([*me, "floor", "4"])
        floor = [(FLOOR[0], (instructions([*me, "floor", "0"]) - floor_base) / per),
                 (FLOOR[1], (instructions([*me, "floor", "1"]) - floor_base) / per - (parse_only - floor_base) / per),
                 (FLOOR[2], (instructions([*me, "floor", "2"]) - floor_base) / per),
                 (FLOOR[3], (instructions([*me, "floor", "3"]) - floor_base) / per)]
    total = sum(v for _, v in stages)
    least = sum(v for _, v in floor)
    print(f"instructions a record, {args.measure} generated records after {args.warm} (callgrind; seed {args.seed})")
    print("\n`ur batch`, compact trail, stage by stage:")
    for name, v in stages:
        print(f"  {name:<48} {v:>11,.0f}  {v / total:6.1%}")
    print(f"  {'end to end':<48} {total:>11,.0f}")
    print("\nthe floor (what no engine over durable-rules avoids):")
    for name, v in floor:
        print(f"  {name:<48} {v:>11,.0f}")
    print(f"  {'floor':<48} {least:>11,.0f}")
    print(f"\nend to end / floor: {total / least:.1f}×; at 2.5× the floor our code would have "
          f"{2.5 * least - least:,.0f} instructions a record, and takes {total - least:,.0f}")


if __name__ == "__main__":
    main()
