"""Benchmarks, each run from the repository root as ``python -m benchmarks.NAME``.

Each writes its results, with the date and the machine, to its own file in this
folder (``--output``); benchmarks/README.md is the index: script, command, what it
measures, latest result and machine.
"""
