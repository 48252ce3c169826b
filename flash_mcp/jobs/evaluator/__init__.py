"""The local evaluator: one process per evaluation (`python -m flash_mcp.jobs.evaluator EVAL_DIR`).

Needs the `local` extra (torch, transformers, peft). It reads EVAL_DIR/spec.json and job.json, writes
only inside EVAL_DIR (rows.jsonl, status.json), holds EVAL_DIR/lock while alive, and stops at the next
batch when EVAL_DIR/cancel appears (SIGTERM creates it). Its own session: a server restart leaves it running.
"""
