"""Benchmark `ur review` end to end: records/s and peak RSS, durable-rules beside the reference evaluator.

    python bench/run.py [--counts 10000 100000] [--seed 7]

Figures come from one run on this machine, baseline included; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
UR = [sys.executable, "-m", "ur_engine.cli"]


def generate(count: int, seed: int, path: Path) -> None:
    with path.open("w") as out:
        subprocess.run([sys.executable, str(HERE / "generate.py"), "--count", str(count), "--seed", str(seed)],
                       stdout=out, check=True)


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
        print(f"{'records':>9} {'evaluator':>10} {'seconds':>8} {'records/s':>10} {'peak RSS MiB':>13}")
        rates = {}
        for count in args.counts:
            path = Path(tmp) / f"stays-{count}.ndjson"
            generate(count, args.seed, path)
            for evaluator in ("durable", "reference"):
                wall, rss = measure(UR + ["review", "--evaluator", evaluator, str(path)])
                rates[(count, evaluator)] = count / wall
                print(f"{count:>9} {evaluator:>10} {wall:>8.1f} {count / wall:>10.0f} {rss / 1024:>13.1f}")
        for count in args.counts:
            ratio = rates[(count, "reference")] / rates[(count, "durable")]
            print(f"{count:>9} reference/durable throughput ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
