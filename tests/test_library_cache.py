"""A checked rule library is kept on disk and read back by the next load of the very same files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ur_engine import Engine
from ur_engine.errors import RuleErrors
from ur_engine.intake import rule_files
from ur_engine.intake.rule_files import load_library

ROOT = Path(__file__).resolve().parents[1]
PNEUMONIA = json.loads((ROOT / "examples" / "pneumonia.json").read_text())


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("UR_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def rules(tmp_path) -> Path:
    copy = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", copy)
    return copy


def _outcome(library) -> dict:
    with Engine(library) as engine:
        d = engine.review(PNEUMONIA, review_id="r").to_dict()
    return d


def test_a_second_load_of_the_same_files_reads_the_checked_library_back(cache, rules, monkeypatch):
    first = load_library(rules)
    assert len(list(cache.glob("library-*.pickle"))) == 1

    def no_check(sources):  # the files are not checked again: the kept library is read
        raise AssertionError("the library was checked again")

    monkeypatch.setattr(rule_files, "load", no_check)
    again = load_library(rules)
    assert again.digest == first.digest
    assert [rs.key for rs in again.rulesets] == [rs.key for rs in first.rulesets]
    assert _outcome(again) == _outcome(first)


def test_an_edited_rule_file_is_checked_and_loaded_afresh(cache, rules):
    before = load_library(rules)
    path = rules / "pneumonia.yaml"
    path.write_text(path.read_text().replace("pneumonia", "pneumonia ", 1))
    after = load_library(rules)
    assert after.digest != before.digest
    assert len(list(cache.glob("library-*.pickle"))) == 2


def test_a_library_with_errors_is_never_kept(cache, rules):
    path = rules / "pneumonia.yaml"
    path.write_text(path.read_text().replace("source:", "sorce:", 1))
    for _ in range(2):  # reported on every load, never read back as if it were sound
        with pytest.raises(RuleErrors):
            load_library(rules)
    assert not list(cache.glob("library-*.pickle"))


def test_a_damaged_cache_file_is_replaced_by_a_fresh_load(cache, rules):
    load_library(rules)
    (kept,) = cache.glob("library-*.pickle")
    kept.write_bytes(b"\x80\x05not a library")
    library = load_library(rules)
    assert library.rulesets
    assert kept.read_bytes()[:2] == b"\x80\x05" and len(kept.read_bytes()) > 1000


def test_only_the_newest_libraries_are_kept(cache, rules, monkeypatch):
    monkeypatch.setattr(rule_files, "CACHE_KEEP", 2)
    path = rules / "pneumonia.yaml"
    for n in range(3):
        path.write_text(path.read_text() + f"\n# edit {n}\n")
        load_library(rules)
    assert len(list(cache.glob("library-*.pickle"))) == 2


def test_an_empty_cache_setting_turns_the_cache_off(tmp_path, rules, monkeypatch):
    monkeypatch.setenv("UR_CACHE_DIR", "")
    assert rule_files.cache_folder() is None
    assert load_library(rules).rulesets
    assert not list(tmp_path.rglob("library-*.pickle"))


def test_a_library_read_back_from_a_pickle_has_its_names_interned_again(rules):
    """Unpickled, every mapping key would be a string of its own, slower to look facts up by than the names the
    engine's code and records use; a worker's copy and the cache's get them interned again."""
    import pickle
    import sys

    again = pickle.loads(pickle.dumps(load_library(rules, cache=False)))
    keys = [*again.facts.catalog, *again.valuesets, *again.facts.findings]
    assert keys and all(sys.intern(k) is k for k in keys)
    assert _outcome(again) == _outcome(load_library(rules, cache=False))


def test_a_cache_entry_that_cannot_be_read_removed_or_replaced_only_means_the_files_are_checked(
        cache, rules, monkeypatch):
    """A folder where the library's file should be: it cannot be opened, unlinked or replaced by a file."""
    monkeypatch.setattr(rule_files, "_key", lambda sources: "x")
    (cache / "library-x.pickle" / "inside").mkdir(parents=True)
    assert load_library(rules).rulesets
    assert (cache / "library-x.pickle").is_dir()
