"""YAML text → plain data plus the line and column of every value, so errors can point into the file.

Dates stay strings (the schemas check their format) and duplicate keys are errors, not silent overwrites.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import yaml

from ur_engine.errors import DuplicateKeyError, RuleError, YamlSyntaxError

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
    """Parse one YAML document; a syntax error becomes a RuleError with its line and column."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlSyntaxError(f"YAML syntax: {exc.problem or exc.context}", file=name,
                              line=mark.line + 1 if mark else None,
                              column=mark.column + 1 if mark else None) from None
    finally:
        loader.dispose()
    doc = Document(name, None)
    if node is None:
        return doc
    errors: list[RuleError] = []
    doc.data = _build(node, (), doc, loader, errors)
    if errors:
        raise errors[0]
    return doc


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
            if key in out:
                errors.append(DuplicateKeyError(f"duplicate key '{key}'", file=doc.name,
                                                line=key_node.start_mark.line + 1,
                                                column=key_node.start_mark.column + 1))
            child = path + (key,)
            doc.key_positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _build(value_node, child, doc, loader, errors)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), doc, loader, errors) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
