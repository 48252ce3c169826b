"""The local trainer: a process of its own per run (`python -m flash_mcp.jobs.trainer RUN_DIR TO FROM`).

Needs the `local` extra (torch, transformers, trl, peft, datasets, accelerate). It writes only
inside its run directory and runs no agent code: the environment's rows, prompts, SFT targets, rewards
and episodes come from its environment worker (jobs/env_worker.py) over the pipe ends TO/FROM, which the
server started beside it. The server reads the run directory and keeps the run store.
"""
