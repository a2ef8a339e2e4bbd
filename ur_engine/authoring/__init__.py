"""Tools for those who write rules: rule tests and coverage, lint, replay of an edit on past stays and its report."""
