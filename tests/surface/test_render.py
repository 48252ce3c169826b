"""The result text an agent reads: compact, complete, never more than the structured content."""

from __future__ import annotations

from flash_mcp.surface.server import render, render_tools


def test_files_are_plain_text_not_json_escaped() -> None:
    text = render.result_text("read_project_file", {"path": "a.py", "content": 'x = "1"\nprint(x)\n', "more": False})
    assert 'x = "1"' in text and "print(x)" in text and "\\n" not in text and '\\"' not in text
    assert "more: false" in text


def test_empty_values_are_left_out_and_records_become_tables() -> None:
    content = {"runs": [{"id": "a", "cost": 1.5, "note": None}, {"id": "b", "cost": 0.25}], "cursor": None}
    text = render.result_text("list_runs", content)
    assert text.splitlines() == ["runs: (2)", "  id | cost", "  a | 1.5", "  b | 0.25"]


def test_a_metric_series_is_one_table_by_step() -> None:
    content = {"run_id": "r", "series": {"loss": [[1, 2.5], [2, 2.25]], "reward": [[2, 0.5]]}, "trends": []}
    text = render.result_text("get_run_metrics", content)
    assert "step | loss | reward" in text and "  1 | 2.5 | " in text and "  2 | 2.25 | 0.5" in text
    assert len(text) < len(str(content)) * 2


def test_warnings_and_hints_are_said_once_per_cause() -> None:
    said: set[str] = set()
    first = render.result_text(
        "validate_config", {"valid": True, "warnings": [{"key": "project", "message": "m"}]}, said
    )
    again = render.result_text("dry_run", {"valid": True, "warnings": [{"key": "project", "message": "m"}]}, said)
    new = render.result_text(
        "dry_run", {"warnings": [{"key": "wandb", "message": "w"}, {"key": "project", "message": "m"}]}, said
    )
    assert "project | m" in first and "project" not in again and "(warnings: +1 said earlier)" in again
    assert "wandb | w" in new and "project | m" not in new


def test_a_polled_run_repeats_only_what_changed() -> None:
    said: set[str] = set()
    run = {"run_id": "r1", "state": "running", "step": 1, "model": "m", "config": "c.toml"}
    first = render.result_text("get_run", run, said)
    second = render.result_text("get_run", {**run, "step": 2}, said)
    assert "model: m" in first and "model" not in second and "step: 2" in second and "state: running" in second
    assert "(+2 fields as last reported)" in second
    assert render_tools.run_text  # registered for get_run and cancel_run


def test_unix_times_read_as_utc_and_big_floats_keep_their_digits() -> None:
    text = render.render({"created_at": 1795620933.25, "tokens_per_s": 123456.75})
    assert "created_at: 2026-11-25T" in text and "tokens_per_s: 123456.8" in text


def test_whitespace_only_completions_are_named_and_drawn() -> None:
    from flash_mcp.core.visible import visible_whitespace

    assert visible_whitespace("  \n") == "(whitespace only: 2 spaces, 1 newline) ␠␠⏎"
    assert visible_whitespace("") == "(empty)"
    assert visible_whitespace(" 42 ") == " 42 "
    samples = render.result_text("get_run_samples", {"samples": [{"step": 1, "completion": "\t", "reward": 0.0},
                                                          {"step": 2, "completion": "", "reward": 0.0}]})  # fmt: skip
    assert "1 | (whitespace only: 1 tab) ⇥ | 0" in samples and "2 | (empty) | 0" in samples, samples
    rows = render.result_text("get_evaluation", {"rows": [{"row_id": "a", "completion": "   ", "score": 0.0},
                                                   {"row_id": "b", "completion": "", "score": 0.0}]})  # fmt: skip
    assert "(whitespace only: 3 spaces) ␠␠␠" in rows and "(empty)" in rows, rows
    assert "\n" not in visible_whitespace("\n\n")
