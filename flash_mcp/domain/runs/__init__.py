"""Runs as data: the run-directory contract and run health (series, trends, warnings, charts)."""
