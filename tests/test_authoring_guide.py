"""docs/authoring.md runs as written: its files are written, its commands run, their output is what it shows.

A fenced block with ``file=PATH`` is written to PATH (``under=TEXT``: inserted after the line that starts with
TEXT, and after the separator of a Markdown table's header); a ``sh`` block runs in bash with ``ur`` the command
of this checkout; a ``text output`` block lists lines the previous command prints (``…`` stands for anything).
Everything happens in a copy of the default library, never in ``rules/``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, RULES
from ur_engine.intake.rule_files import load_library

GUIDE = ROOT / "docs" / "authoring.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)


def blocks(text: str) -> list[tuple[str, dict[str, str], str]]:
    """(language, attributes, body) of every fenced block, in order; ``under=`` takes the rest of its line."""
    out = []
    for lang, info, body in FENCE.findall(text):
        attrs: dict[str, str] = {}
        info = info.strip()
        if "under=" in info:
            info, attrs["under"] = info.split("under=", 1)
        for word in info.split():
            key, _, value = word.partition("=")
            attrs[key] = value
        out.append((lang, attrs, body))
    return out


def insert_under(path, heading: str, body: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith(heading.strip())) + 1
    if at < len(lines) and lines[at].startswith("|-"):
        at += 1
    path.write_text("".join(lines[:at]) + body + "".join(lines[at:]), encoding="utf-8")


def shows(output: str, expected: str) -> list[str]:
    """The lines of ``expected`` that no line of ``output`` matches."""
    missing = []
    for line in filter(None, (x.strip() for x in expected.splitlines())):
        pattern = ".*".join(map(re.escape, line.split("…")))
        if not any(re.fullmatch(pattern, got.strip()) for got in output.splitlines()):
            missing.append(line)
    return missing


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory):
    """Run the guide in a fresh directory; the directory and every command's output, in order."""
    work = tmp_path_factory.mktemp("guide")
    shutil.copytree(RULES, work / "rules")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "UR_PY": sys.executable}
    ran: list[tuple[str, subprocess.CompletedProcess]] = []
    for lang, attrs, body in blocks(GUIDE.read_text(encoding="utf-8")):
        if "file" in attrs:
            target = work / attrs["file"]
            if "under" in attrs:
                insert_under(target, attrs["under"], body)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(body, encoding="utf-8")
        elif lang == "sh":
            script = 'ur() { "$UR_PY" -m ur_engine.cli "$@"; }\nset -euo pipefail\n' + body
            proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                                  timeout=300)
            ran.append((body, proc))
        elif lang == "text" and "output" in attrs:
            ran.append(("output", subprocess.CompletedProcess([], 0, body, "")))
        else:
            pytest.fail(f"a ```{lang} block the guide's test does not know how to run: {body[:60]!r}")
    return work, ran


def test_every_command_of_the_guide_succeeds(tutorial):
    _, ran = tutorial
    commands = [(body, proc) for body, proc in ran if body != "output"]
    assert len(commands) >= 4
    for body, proc in commands:
        assert proc.returncode == 0, f"{body}\n{proc.stdout}\n{proc.stderr}"


def test_each_command_prints_what_the_guide_shows(tutorial):
    _, ran = tutorial
    shown = 0
    for (body, proc), (kind, expected) in zip(ran, ran[1:]):
        if kind == "output":
            assert not shows(proc.stdout, expected.stdout), f"{body}: {shows(proc.stdout, expected.stdout)}"
            shown += 1
    assert shown >= 3


def test_the_new_rule_set_is_in_the_library_with_its_facts_and_valueset(tutorial):
    work, _ = tutorial
    lib = load_library(work / "rules")
    (pe,) = [rs for rs in lib.rulesets if rs.id == "pulmonary-embolism"]
    assert [c.id for c in pe.criteria] == ["PE-SPESI-NOT-LOW-RISK"] and len(pe.tests) == 3
    assert "pulmonary-embolism" in lib.valuesets and "score.spesi" in lib.facts.catalog
    assert {"finding.history_of_cancer", "finding.chronic_cardiopulmonary_disease"} <= set(lib.facts.catalog)


def test_the_guides_rows_keep_the_library_table_true(tutorial):
    work, _ = tutorial
    lib = load_library(work / "rules")
    rows = {}
    for line in (work / "rules" / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[3].isdigit():
            rows[cells[0]] = (cells[1], int(cells[3]), int(cells[4]))
    assert rows == {rs.id: (rs.file, len(rs.criteria), len(rs.tests)) for rs in lib.rulesets}
    assert "| pulmonary-embolism | valuesets/pulmonary-embolism.yaml |" in (work / "rules" / "README.md").read_text()


def test_the_replay_wrote_its_html_report_with_the_chart(tutorial):
    work, _ = tutorial
    page = (work / "replay.html").read_text()
    assert "<svg" in page and "PE-SPESI-NOT-LOW-RISK" in page


def test_the_guides_table_of_mistakes_quotes_what_check_says():
    """Each of the mistakes ``tests/test_rule_mistakes.py`` makes is in the table, with the fix check prints."""
    from test_rule_mistakes import MISTAKES

    table = GUIDE.read_text(encoding="utf-8").split("## When `check` says no")[1]
    for mistake in MISTAKES:
        code, fix = mistake.values[-2:]
        row = next((line for line in table.splitlines() if fix in line), None)
        assert row is not None and f"`{code} " in row, f"{mistake.id}: {fix!r} is not in the guide's table"
