"""The local trainer: a process of its own per run (`python -m flash_mcp.jobs.trainer RUN_DIR`).

Needs the `local` extra (torch, transformers, trl, peft, datasets, accelerate). It writes only
inside its run directory; the server reads that directory and keeps the run store.
"""
