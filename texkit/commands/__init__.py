"""The ``texkit`` command and its sub-commands (typer + rich); the library lives one level up.

Each module holds one command's work: `cli` wires them into the typer app,
the others do the job (``demo``, ``doctor``, ``generate``, ``render``, ``score``, ``new-reward``).
"""
