"""The local evaluator: one process per evaluation (`python -m flash_mcp.jobs.evaluator EVAL_DIR FDS…`).

Needs the `local` extra (torch, transformers, peft). It runs no agent code: the server starts two environment
workers (`flash_mcp/jobs/env_worker.py`) beside it and hands it their pipe ends; one renders the prompts (and
plays multi-turn episodes), the other scores shuffled (row, completion) pairs. It reads EVAL_DIR/spec.json and
job.json, writes only inside EVAL_DIR (rows.jsonl, status.json), holds EVAL_DIR/lock while alive, and stops at
the next batch when EVAL_DIR/cancel appears (SIGTERM creates it). Its own session: a server restart leaves it
(and its workers) running; when it ends its workers see EOF and exit.
"""
