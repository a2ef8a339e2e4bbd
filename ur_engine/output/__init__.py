"""Decisions out: the shapes a decision leaves the engine in (FHIR resources, the compact batch line).

Pure functions of a decision and the library that made it; no file, network or web framework.
"""
