"""The rule library: YAML sources with line numbers, the typed model (rule sets, criteria, levels, tests)
and the loader that checks every file against its schema and its meaning, reporting all errors at once."""
