"""YAML text → plain data plus the line and column of every value, so errors can point into the file.

Dates stay strings (the schemas check their format) and duplicate keys are errors, not silent overwrites.
A YAML error is told as its fix (tabs, quoting, indentation, an unclosed bracket), not as the parser's words,
and a problem that does not stop parsing (a repeated key, a value split by an unquoted comma) is kept on the
document so that the rest of the file is still checked.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, field

import yaml

from ur_engine.errors import DuplicateKeyError, RuleError, RuleErrors, YamlSyntaxError

Path = tuple[Hashable, ...]  # a JSON path as a tuple of keys and indexes, e.g. ("criteria", 0, "any")
Position = tuple[int, int]  # line and column, both 1-based


# libyaml's parser when PyYAML was built with it: a library loads ~10× faster (the service, every rule test and
# lint run load one), with the same nodes and marks.
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """SafeLoader without the timestamp resolver: ``2026-01-01`` stays the string the schema expects."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class Document:
    """One parsed YAML file: its data and where each part of it stands."""

    name: str
    data: object  # plain YAML data; its shape is known once it passes its schema (see rules.documents)
    positions: dict[Path, Position] = field(default_factory=dict)
    key_positions: dict[Path, Position] = field(default_factory=dict)  # Path of a mapping value -> its key's
    problems: list[RuleError] = field(default_factory=list)  # found while parsing; the data is still whole

    def where(self, path: Path, key: bool = False) -> Position:
        """The position of ``path``, or of its nearest ancestor that has one."""
        table = self.key_positions if key else self.positions
        path = tuple(path)
        while path:
            if path in table:
                return table[path]
            if key and path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))

    def error(self, path: Path, message: str, kind: type[RuleError], key: bool = False, *,
              rule_id: str | None = None, suggestion: str | None = None) -> RuleError:
        line, column = self.where(path, key)
        return kind(message, file=self.name, line=line, column=column, rule_id=rule_id, suggestion=suggestion)


def parse(name: str, text: str) -> Document:
    """Parse one YAML document; a syntax error becomes a YamlSyntaxError that names the fix, at its line and
    column. Problems that leave the data whole are in ``Document.problems``.

    Several syntax errors of a file are raised together (RuleErrors) when the fix of each is mechanical — a tab
    in the indentation, a value to put in quotes: the file is read again with that fix made, to find the next
    mistake, so an author fixes them all in one go. After any other mistake the parser cannot tell what follows,
    and only that first error is reported.
    """
    found: list[YamlSyntaxError] = []
    while True:
        try:
            doc = _parse(name, text)
        except _Misread as exc:
            message, line, column = explain_yaml(exc.error, text)
            if found and line in {e.line for e in found}:
                return _raise(found)  # a line already reported: what follows from the repair, not the author
            found.append(YamlSyntaxError(message, file=name, line=line, column=column))
            repaired = _repaired(text, message, line) if len(found) < MAX_SYNTAX_ERRORS else None
            if repaired is None or repaired == text:
                return _raise(found)
            text = repaired
            continue
        return _raise(found, doc) if found else doc


# Syntax errors reported for one file at most: past a few, the author is better served fixing and checking again.
MAX_SYNTAX_ERRORS = 10


class _Misread(Exception):
    def __init__(self, error: yaml.MarkedYAMLError) -> None:
        self.error = error


def _parse(name: str, text: str) -> Document:
    loader = _Loader(text)
    doc = Document(name, None)
    try:
        node = loader.get_single_node()
        if node is not None:
            doc.data = _build(node, (), doc, loader, doc.problems)  # builds values: an unknown tag fails here
    except yaml.MarkedYAMLError as exc:
        raise _Misread(exc) from None
    finally:
        loader.dispose()
    return doc


def _raise(found: list[YamlSyntaxError], parsed: Document | None = None) -> Document:
    """Raise the syntax errors found (the repaired file's own problems, once it parses, with them)."""
    errors: list[RuleError] = [*found, *(parsed.problems if parsed is not None else ())]
    if len(errors) == 1:
        raise errors[0]
    raise RuleErrors(errors)


def _repaired(text: str, message: str, line: int | None) -> str | None:
    """``text`` with the fix ``message`` names made on ``line``, when that fix is mechanical; else None."""
    lines = text.split("\n")
    if line is None or not 1 <= line <= len(lines):
        return None
    at = lines[line - 1]
    if message.startswith("YAML does not allow tabs for indentation"):
        # Lined up with the key of the nearest line above (after its '- ' when it starts a list item): a key
        # among its siblings, as a tab usually stands for.
        above = next((x for x in reversed(lines[:line - 1]) if x.strip() and not x.lstrip().startswith("#")), "")
        indent = re.match(r"[ ]*(?:-[ ]+)?", above)
        lines[line - 1] = " " * (indent.end() if indent else 0) + at.lstrip(" \t")
    elif message.startswith(("a colon followed by a space inside a value", "a ':' inside a value",
                             "a value cannot start with", "a value starting with")):
        key = re.match(r"(\s*(?:-\s+)?[^:#\s][^:#]*?:\s+)(.*)$", at)
        if key is None or key.group(2).startswith(("'", '"')):
            return None
        lines[line - 1] = key.group(1) + '"' + key.group(2).replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        return None
    return "\n".join(lines)


def explain_yaml(exc: yaml.MarkedYAMLError, text: str) -> tuple[str, int | None, int | None]:
    """The parser's complaint as the fix a rule author needs, with the line and column to look at.

    PyYAML words the same mistake differently with and without libyaml, so the text at the mark decides.
    """
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return f"YAML syntax: {exc.problem or exc.context}", None, None
    lines = text.splitlines() or [""]
    row, col = min(mark.line, len(lines) - 1), mark.column
    line = lines[row] if row >= 0 else ""
    at = line[col] if 0 <= col < len(line) else ""
    problem, context = exc.problem or "", exc.context or ""
    opened = exc.context_mark
    here = (mark.line + 1, mark.column + 1)  # as the parser counts: past the last line at the end
    # A tab in the indentation of the line the parser stopped on, or of the line before it.
    for r in (row, row - 1):
        if 0 <= r < len(lines):
            indent = lines[r][:len(lines[r]) - len(lines[r].lstrip(" \t"))]
            if "\t" in indent:
                return "YAML does not allow tabs for indentation: use spaces", r + 1, indent.index("\t") + 1
    if at == "\t":
        return "YAML does not allow tabs here: use spaces", *here
    if "mapping values are not allowed" in problem:
        key = re.match(r"\s*(?:-\s+)?([^:#]+?):\s", line)
        if key and key.end() <= col:
            value = line[key.end():].strip()
            return (f"a colon followed by a space inside a value starts a new key: put the value in quotes, "
                    f"{key.group(1).strip()}: \"{value}\""), *here
        return ("this key is not lined up with the keys above it: keys of one mapping start at the same column "
                "(indent with spaces, two per level)"), row + 1, len(line) - len(line.lstrip()) + 1
    if "cannot start any token" in problem and at in "@`%":
        return f"a value cannot start with '{at}': put the value in quotes", *here
    if "undefined alias" in problem or "scanning an alias" in context:
        return "a value starting with '*' is read as a reference: put the value in quotes", *here
    if "scanning an anchor" in context:
        return "a value starting with '&' is read as an anchor: put the value in quotes", *here
    if "constructor for the tag" in problem or "scanning a tag" in context:
        return "a value or key starting with '!' is read as a YAML tag: put it in quotes", *here
    if "scanning a directive" in context or "<document start>" in problem:
        return "a line starting with '%' is read as a YAML directive: put the value in quotes", *here
    if "block scalar" in context:
        return ("'|' or '>' starts a block of text that begins on the next line: put a value that starts with "
                "one in quotes"), *here
    if "unhashable key" in problem or "mapping keys are not allowed" in problem:
        return "'?' starts a complex key: put a value holding '? ' in quotes", *here
    if "block sequence entries are not allowed" in problem:
        return ("a '- ' list item where a value belongs: start the list on the next line, indented under its "
                "key, or put the value in quotes"), *here
    if "quoted scalar" in context and opened is not None:
        return (f"the quote opened at line {opened.line + 1} is never closed: close it, and write a quote inside "
                f"'…' as '' (or use \"…\")"), opened.line + 1, opened.column + 1
    if "flow mapping" in context or "flow sequence" in context:
        close = "}" if "mapping" in context else "]"
        start = opened or mark
        if mark.line > start.line or not at:
            return (f"the '{lines[start.line][start.column] if start.line < len(lines) else close}' at line "
                    f"{start.line + 1} is not closed: add '{close}' at the end of its value (a '#' inside it "
                    f"starts a comment: quote a value that holds one)"), *here
        if at == ":":
            return ("inside {…} or […] a colon followed by a space ends a key: put the value that holds it "
                    "in quotes"), *here
        return ("inside {…} or […] entries are separated by commas: put a value that holds a comma, colon "
                "or quote in quotes"), *here
    if "found unexpected ':'" in problem:
        return "a ':' inside a value: put the value in quotes", *here
    if "expected node content" in problem:
        return ("no value where one was expected (a stray '}', ']' or ','?): remove it, or put the value in "
                "quotes"), *here
    if "could not find expected ':'" in problem:
        start = opened or mark
        return ("a line that is neither 'key: value' nor a list item '- …': add the missing ':', or indent "
                "text that continues a value under its key"), start.line + 1, start.column + 1
    if "block collection" in context:
        return ("a key at the indentation of the list items above it: start each list item with '- ', or "
                "indent the key under its item"), *here
    if "block mapping" in context or "expected <block end>" in problem:
        if line.lstrip().split(":", 1)[-1].strip().startswith("'") and "'" in line[col:]:
            return ("a quote inside a value in '…' ends it early: write it twice (''), or use \"…\""), *here
        return ("something after a value where a new key was expected: check the indentation (spaces, keys of "
                "one mapping at the same column) and put a value with ': ', '#' or quotes in quotes"), *here
    return f"YAML syntax: {problem or context}", *here


def _build(node: yaml.Node, path: Path, doc: Document, loader: _Loader, errors: list[RuleError]) -> object:
    doc.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Hashable, object] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                errors.append(YamlSyntaxError("YAML syntax: a key must be a single value, not a list or mapping",
                                              file=doc.name, line=key_node.start_mark.line + 1,
                                              column=key_node.start_mark.column + 1))
                continue
            if key is None:  # `: value`, or an anchor (`&x:`) where the key belongs; nothing can read it
                errors.append(YamlSyntaxError("a value without a key: write the key before the ':' (a key "
                                              "starting with '&', '*' or '!' needs quotes)", file=doc.name,
                                              line=key_node.start_mark.line + 1,
                                              column=key_node.start_mark.column + 1))
                continue
            if key in out:
                errors.append(DuplicateKeyError(f"duplicate key '{key}'", file=doc.name,
                                                line=key_node.start_mark.line + 1,
                                                column=key_node.start_mark.column + 1))
            child = path + (key,)
            doc.key_positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if node.flow_style and _no_value(key_node, value_node) and out:
                # `{code: J15, text: Bacterial pneumonia, not elsewhere classified}`: the comma ended the text
                # and made its tail a key without a value.
                last = list(out)[-1]
                errors.append(YamlSyntaxError(
                    f"'{key}' has no value: inside {{…}} a comma separates entries, so it ended '{last}' — put "
                    f"the whole value in quotes, {last}: \"{out[last]}, {key}\"", file=doc.name,
                    line=key_node.start_mark.line + 1, column=key_node.start_mark.column + 1))
            out[key] = _build(value_node, child, doc, loader, errors)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), doc, loader, errors) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _no_value(key: yaml.Node, value: yaml.Node) -> bool:
    """A key written without a colon (``{a: 1, b}``), not one given ``null``, ``~`` or nothing after its colon."""
    return isinstance(value, yaml.ScalarNode) and value.value == "" and not value.style and \
        value.start_mark.index == value.end_mark.index == key.end_mark.index
