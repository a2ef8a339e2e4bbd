"""The way in: readers of NDJSON, CSV, Parquet and FHIR (``readers``, ``fhir``) and of rule folders on disk
(``rule_files``). Everything here hands the core texts and dicts, never paths."""
