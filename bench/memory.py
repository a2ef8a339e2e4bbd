"""Where a long batch's memory goes: peak RSS of one `ur batch` process at growing input sizes, and what holds it.

    python bench/memory.py [--marks 100000 300000] [--input FILE] [--seed 7] [--trim] [--tracemalloc START]

Runs the batch pipeline in this process (``run_batch`` with one worker, as ``ur batch --workers 1``) over
generated stays (or ``--input``), and at each mark prints the peak and current RSS with what the process holds:
Python's live small objects (pymalloc blocks) and the arenas they pin (1 MiB each), and the C heap (glibc
``mallinfo2``: in use by C code and large Python objects, and free but kept). The last line gives each figure's
growth from the first mark to the last, and the ratio of the peaks. Live blocks and C heap in use that stay level
while arenas and kept free memory creep are the allocators' fragmentation, not a structure of ours that grows.

``--trim`` calls ``malloc_trim(0)`` after each chunk, to tell glibc's kept free memory from the rest.
``--tracemalloc START`` also traces allocations from the START-th stay on (about 10× slower; pymalloc's arenas are
then not shown) and prints the allocations whose live memory grew most between the last two marks: what a
structure that grows would show.

Not part of the test suite: a 1,000,000-stay mark takes 6–8 minutes of one core.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                       "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError):  # not glibc (or older than 2.33): RSS only
        return None


LIBC = _libc()


def _status() -> dict[str, int]:
    with open("/proc/self/status") as f:
        return {line.split(":")[0]: int(line.split()[1]) for line in f if line.startswith(("VmRSS", "VmHWM"))}


def _arenas() -> int | None:
    """pymalloc arenas allocated now (None without pymalloc): sys._debugmallocstats writes to C's stderr."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as t:
        os.dup2(t.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        t.seek(0)
        found = re.search(rb"# arenas allocated current\s*=\s*([\d,]+)", t.read())
    return int(found.group(1).replace(b",", b"")) if found else None


def snapshot() -> dict[str, float]:
    """What the process holds now, in MiB (blocks: live pymalloc blocks, in thousands)."""
    s = _status()
    out = {"peak RSS": s["VmHWM"] / 1024, "RSS": s["VmRSS"] / 1024}
    arenas = _arenas()
    if arenas is not None:
        out["pymalloc arenas"] = float(arenas)  # 1 MiB each on 64-bit CPython ≥ 3.10
        out["live blocks (k)"] = sys.getallocatedblocks() / 1000
    if LIBC is not None:
        m = LIBC.mallinfo2()
        out["C heap in use"] = (m.uordblks + m.hblkhd) / 2**20
        out["C heap free, kept"] = m.fordblks / 2**20
    return out


class _Done(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--marks", type=int, nargs="+", default=[100_000, 300_000])
    ap.add_argument("--input", type=Path, help="NDJSON stays (default: generated, as many as the last mark)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--trim", action="store_true", help="malloc_trim(0) after each chunk")
    ap.add_argument("--tracemalloc", type=int, metavar="START", help="trace allocations from this stay on")
    args = ap.parse_args(argv)
    marks = sorted(args.marks)
    # Chunks are 500 stays: the marks are read where a chunk ends.
    if any(m % 500 for m in marks):
        ap.error("marks must be multiples of 500 (the batch's chunk)")

    from ur_engine.batch.runner import run_batch
    from ur_engine.intake.rule_files import default_sources

    with tempfile.TemporaryDirectory() as tmp:
        data = args.input
        if data is None:
            data = Path(tmp) / "stays.ndjson"
            with data.open("w") as f:
                subprocess.run([sys.executable, str(HERE / "generate.py"), "--count", str(marks[-1]),
                                "--seed", str(args.seed)], stdout=f, check=True)
        done, seen, traces = [0], {}, []
        start = time.perf_counter()

        def progress(n: int) -> None:
            done[0] += n
            if args.trim and LIBC is not None:
                LIBC.malloc_trim(0)
            if args.tracemalloc is not None and done[0] == args.tracemalloc:
                tracemalloc.start(8)
            if done[0] in marks:
                gc.collect()
                seen[done[0]] = snapshot()
                print(f"{done[0]:>9,} stays, {time.perf_counter() - start:6.0f} s: "
                      + ", ".join(f"{k} {v:.1f}" for k, v in seen[done[0]].items()), flush=True)
                if tracemalloc.is_tracing():
                    traces.append(tracemalloc.take_snapshot())
                if done[0] == marks[-1]:
                    raise _Done

        try:
            run_batch([str(data)], str(Path(tmp) / "out.ndjson"), default_sources(), workers=1, progress=progress)
        except _Done:
            pass
    first, last = seen[marks[0]], seen[marks[-1]]
    print(f"from {marks[0]:,} to {marks[-1]:,} stays: "
          + ", ".join(f"{k} {last[k] - first[k]:+.1f}" for k in first)
          + f"; peak ratio {last['peak RSS'] / first['peak RSS']:.3f}")
    if len(traces) >= 2:
        print("allocations whose live memory grew most between the last two marks:")
        for stat in traces[-1].compare_to(traces[-2], "traceback")[:10]:
            print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  "
                  + " <- ".join(f"{Path(fr.filename).name}:{fr.lineno}" for fr in reversed(list(stat.traceback)[-4:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
