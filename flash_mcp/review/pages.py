"""The review page's HTML: plain forms, no scripts, no third-party assets, every control labelled."""

from __future__ import annotations

import datetime as dt
import json
import re
from html import escape
from typing import Any

from flash_mcp.domain.approval.store import ProposalView

_STYLE = (
    "body{font:16px/1.45 system-ui,sans-serif;max-width:72rem;margin:1.5rem auto;padding:0 1rem;color:#111}"
    "nav a{margin-right:1.2rem}pre{background:#f4f4f4;padding:.8rem;overflow:auto;white-space:pre-wrap}"
    "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.35rem;text-align:left}"
    "button{font-size:1rem;padding:.45rem 1rem;margin:.3rem .8rem .3rem 0}textarea{width:100%;font:inherit}"
    ".note{background:#fff6d6;padding:.6rem;border-left:4px solid #d9a400}:focus{outline:3px solid #1a73e8}"
)
_URL = re.compile(r"https?://(?:localhost|127\.0\.0\.1):\d+/[\w/.?=&%-]*")


def page(title: str, body: str, note: str | None = None) -> bytes:
    shown = f"<p class='note' role='status'>{linkified(note)}</p>" if note else ""
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)} — flash-mcp review"
        f"</title><meta name='viewport' content='width=device-width'><style>{_STYLE}</style></head><body>"
        "<nav aria-label='sections'><a href='/'>Overview</a><a href='/proposals'>Proposals</a>"
        "<a href='/runs'>Runs</a><a href='/evaluations'>Evaluations</a><a href='/spend'>Spend and audit</a></nav>"
        f"<main><h1>{escape(title)}</h1>{shown}{body}</main></body></html>"
    ).encode()


def linkified(text: str) -> str:
    """Escaped text with loopback links (the guard's approval page) made clickable."""
    parts, last = [], 0
    for match in _URL.finditer(text):
        parts += [escape(text[last : match.start()]), f"<a href='{escape(match.group())}'>{escape(match.group())}</a>"]
        last = match.end()
    return "".join([*parts, escape(text[last:])])


def form(action: str, csrf: str, label: str, extra: str = "") -> str:
    return (
        f"<form method='post' action='{escape(action)}'><input type='hidden' name='csrf' value='{escape(csrf)}'>"
        f"{extra}<button type='submit'>{escape(label)}</button></form>"
    )


def table(headers: list[str], rows: str) -> str:
    """A table with one header row; `rows` are its <tr> elements, already escaped."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def proposals_table(proposals: list[ProposalView]) -> str:
    if not proposals:
        return "<p>No proposals yet: a paid launch the agent makes waits here for you.</p>"
    rows = "".join(
        f"<tr><td><a href='/proposals/{escape(p.id)}'>{escape(p.id)}</a></td><td>{escape(p.status)}</td>"
        f"<td>{escape(p.plane)}</td><td>{escape(p.config)}</td><td>${p.quote_usd:.2f}</td>"
        f"<td>{escape(p.run_id or '')}</td></tr>"
        for p in proposals
    )
    return table(["Proposal", "Status", "Plane", "Config", "Quote", "Run"], rows)


def proposal_detail(
    p: ProposalView, csrf: str, budget_after: list[str], reason: str | None, rehearsal: Any = None, tested: Any = None
) -> str:
    allows = (f"<ul><li>one submit, of exactly the run below</li><li>to the <strong>{escape(p.plane)}</strong> plane"
              f"</li><li>for up to <strong>${p.quote_usd:.2f}</strong> ({escape(p.quote_label)})</li>"
              "<li>nothing else: a changed config, data or environment needs a new proposal</li></ul>")  # fmt: skip
    data = "".join(f"<li><code>{escape(d.path)}</code> sha256 <code>{d.sha256[:16]}…</code> ({d.bytes} bytes)</li>"
                   for d in p.data) or "<li>none recorded</li>"  # fmt: skip
    decide = ""
    if p.live:
        decide = form(f"/proposals/{p.id}/approve", csrf, "Approve and submit") + form(
            f"/proposals/{p.id}/deny", csrf, "Deny",
            "<label for='reason'>Reason the agent will read</label><textarea id='reason' name='reason' rows='2'>"
            "</textarea>",
        )  # fmt: skip
    return (
        f"<p>Status <strong>{escape(p.status)}</strong>{' — ' + escape(reason) if reason else ''}. Config "
        f"<code>{escape(p.config)}</code>, environment <code>{escape(p.environment_id)}</code> "
        f"(digest <code>{escape(p.environment_digest or 'none')}</code>).</p>"
        f"<h2>What approving allows</h2>{allows}<ul>{''.join(f'<li>{escape(b)}</li>' for b in budget_after)}</ul>"
        f"{decide}<h2>Checks for this environment</h2>{_checks(p, rehearsal, tested)}"
        f"<h2>Diff against a plain run of this config</h2><pre>{escape(p.config_diff or 'none')}</pre>"
        f"<h2>Data it trains on</h2><ul>{data}</ul>"
        f"<h2>The run exactly as it will be submitted</h2><pre>{escape(json.dumps(p.run, indent=1))}</pre>"
    )


def _checks(p: ProposalView, rehearsal: Any, tested: Any) -> str:
    test = env_test(p.environment_digest, tested)
    if rehearsal is None:
        return f"{test}<p>Latest evaluation: none of this environment yet.</p>"
    line = (f"<a href='/evaluations/{escape(rehearsal.eval_id)}'>{escape(rehearsal.eval_id)}</a>, "
            f"{escape(rehearsal.state)}, target <code>{escape(rehearsal.target)}</code>: mean reward "
            f"{_num(rehearsal.mean_reward)}, success {_num(rehearsal.success_rate, '.0%')} "
            f"({rehearsal.progress.done}/{rehearsal.progress.total} answers)")  # fmt: skip
    return f"{test}<p>Latest evaluation: {line}.</p>"


def env_test(digest: str | None, tested: Any) -> str:
    """The newest recorded environment test of the pushed digest; else an older one of the project, as stale."""
    none = "Environment test: <strong>no environment test of this exact package</strong>"
    if digest is None:
        return f"<p class='envtest'>{none} (the environment is a GitHub reference, not a package pushed from here).</p>"
    exact, stale = (tested.exact, tested.stale) if tested is not None else (None, None)
    if exact is not None:
        return (f"<p class='envtest'>Environment test of this exact package: <strong>{escape(exact.verdict)}</strong>, "
                f"{_when(exact.created_at)}. {_tested(exact)}</p>{_audit(exact)}")  # fmt: skip
    if stale is None:
        return (f"<p class='envtest'>{none} (digest <code>{escape(digest[:16])}</code>); the agent's "
                "<code>test_environment</code> on the project records one.</p>")  # fmt: skip
    return (f"<p class='envtest'>{none}. <span class='stale'>Stale: the newest test of <code>{escape(stale.label)}"
            f"</code> was of digest <code>{escape(stale.digest[:16])}</code>, not this package's <code>"
            f"{escape(digest[:16])}</code>; it said <strong>{escape(stale.verdict)}</strong>, reward audit "
            f"<strong>{escape(stale.audit_verdict)}</strong>, {_when(stale.created_at)}; it says nothing of this "
            "package.</span></p>")  # fmt: skip


def _tested(r: Any) -> str:
    rows = f"{r.rows_passed}/{r.rows_checked} rows passed"
    if r.rows_total is not None and r.rows_total != r.rows_checked:
        rows += f" (of {r.rows_total} in the dataset)"
    config = f", config <code>{escape(r.config)}</code>" if r.config else ""
    return (f"{rows}; algorithm {escape(r.algorithm)}{config}; project <code>{escape(r.label)}</code>, digest "
            f"<code>{escape(r.digest[:16])}</code>. <q>{escape(r.summary)}</q>")  # fmt: skip


def _audit(r: Any) -> str:
    head = f"<p class='audit'>Reward audit: <strong>{escape(r.audit_verdict)}</strong>"
    if not r.findings:
        return f"{head} — no findings.</p>"
    rows = "".join(f"<tr><td><code>{escape(f.code)}</code></td><td>{escape(f.status)}</td><td>{escape(f.message)}</td>"
                   "</tr>" for f in r.findings)  # fmt: skip
    return f"{head} — {len(r.findings)} finding(s):</p>" + table(["Code", "Status", "Finding"], rows)


def _when(at: float) -> str:
    return "tested " + dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def runs_table(views: list[Any]) -> str:
    if not views:
        return "<p>No runs yet.</p>"
    rows = "".join(
        f"<tr><td><a href='/runs/{escape(v.run_id)}'>{escape(v.run_id)}</a></td><td>{escape(v.state)}</td>"
        f"<td>{'' if v.step is None else v.step}/{'' if v.total_steps is None else v.total_steps}</td>"
        f"<td>{escape(v.algorithm)}</td><td>{escape(v.model)}</td>"
        f"<td>{'-' if v.cost_usd is None else f'${v.cost_usd:.2f}'}</td></tr>"
        for v in views
    )
    return table(["Run", "State", "Step", "Algorithm", "Model", "Cost"], rows)


def audit_table(events: list[dict[str, Any]], chosen: str | None) -> str:
    kinds = sorted({e.get("event", "") for e in events})
    options = "".join(f"<option{' selected' if k == chosen else ''}>{escape(k)}</option>" for k in kinds)
    picker = (
        "<form method='get' action='/spend'><label for='event'>Show only</label> <select id='event' name='event'>"
        f"<option value=''>every event</option>{options}</select> <button>Filter</button></form>"
    )
    shown = [e for e in events if not chosen or e.get("event") == chosen]
    rows = "".join(
        f"<tr><td>{escape(str(e.get('event')))}</td><td><code>{escape(_facts(e))}</code></td></tr>" for e in shown[:200]
    )
    return picker + table(["Event", "Facts"], rows)


def _facts(event: dict[str, Any]) -> str:
    return json.dumps(event, default=str)[:400]


def _num(value: float | None, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def evaluations_table(lines: list[Any]) -> str:
    if not lines:
        return "<p>No evaluations yet: the agent's <code>evaluate</code> calls show here.</p>"
    rows = "".join(
        f"<tr><td><a href='/evaluations/{escape(e.eval_id)}'>{escape(e.eval_id)}</a></td><td>{escape(e.state)}</td>"
        f"<td>{escape(e.target)}</td><td>{escape(e.split)}</td><td>{e.progress.done}/{e.progress.total}</td>"
        f"<td>{_num(e.mean_reward)}</td><td>{_num(e.success_rate, '.0%')}</td></tr>"
        for e in lines
    )
    return table(["Evaluation", "State", "Target", "Split", "Answers", "Mean reward", "Success"], rows)


def compare_picker(ids: list[str], a: str | None = None, b: str | None = None) -> str:
    """Pick two evaluations (a plain GET form: it changes nothing)."""
    if len(ids) < 2:
        return "<p>Two finished evaluations with the same ruler can be compared here.</p>"

    def select(name: str, label: str, chosen: str | None) -> str:
        options = "".join(f"<option{' selected' if i == chosen else ''}>{escape(i)}</option>" for i in ids)
        return f"<label for='{name}'>{label}</label> <select id='{name}' name='{name}'>{options}</select> "

    return (
        "<form method='get' action='/compare'>"
        f"{select('a', 'A (before)', a or ids[1])}{select('b', 'B (after)', b or ids[0])}"
        "<button type='submit'>Compare</button></form>"
    )


def evaluation_detail(r: Any, visible: Any) -> str:
    s, spec = r.summary, r.spec
    facts = [
        ("State", r.state + (f" — {r.error}" if r.error else "")), ("Target", spec.target),
        ("Plane", spec.plane), ("Config", spec.config), ("Split", spec.split), ("Rows", str(spec.rows)),
        ("Answers scored", f"{r.progress.done}/{r.progress.total}"), ("Mean reward", _num(s.mean_reward)),
        ("Success", _num(s.success_rate, ".0%")), ("Truncated", _num(s.share_truncated, ".0%")),
        ("Errored", _num(s.share_errored, ".0%")), ("Environment digest", spec.environment_digest[:16]),
    ]  # fmt: skip
    fact_rows = "".join(f"<tr><th scope='row'>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    notes = "".join(f"<li>{escape(n)}</li>" for n in r.notes)
    rows = "".join(
        f"<tr><td>{escape(row.row_id)}</td><td>{row.sample}</td><td>{_num(row.score)}</td>"
        f"<td>{'' if row.success is None else ('yes' if row.success else 'no')}</td>"
        f"<td><pre>{escape(visible(row.completion or ''))}</pre></td></tr>"
        for row in r.rows
    )
    return f"<table>{fact_rows}</table>{f'<ul>{notes}</ul>' if notes else ''}<h2>Rows</h2>" + table(
        ["Row", "Sample", "Score", "Success", "Completion"], rows
    )


def interval_svg(c: Any) -> str:
    """Both means with their intervals and the paired difference (B - A) with its interval, as inline SVG."""
    marks = [("A " + c.a.eval_id, c.a.mean, c.a.interval), ("B " + c.b.eval_id, c.b.mean, c.b.interval),
             ("B - A (paired)", c.difference, c.interval)]  # fmt: skip
    values = [0.0] + [v for _, m, i in marks for v in ([m] if m is not None else []) + list(i or ())]
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or 0.5
    low, high = low - pad, high + pad
    left, width = 260, 590

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * width

    parts = [f"<line x1='{x(0):.1f}' y1='10' x2='{x(0):.1f}' y2='150' stroke='#888' stroke-dasharray='4 3'/>",
             f"<text x='{x(0):.1f}' y='168' font-size='13' text-anchor='middle'>0</text>",
             f"<text x='{left}' y='168' font-size='13'>{low:.3g}</text>",
             f"<text x='{left + width}' y='168' font-size='13' text-anchor='end'>{high:.3g}</text>"]  # fmt: skip
    for n, (label, mean, interval) in enumerate(marks):
        y = 30 + n * 45
        color = "#1a5fb4" if n < 2 else "#c01c28"
        parts.append(f"<text x='8' y='{y + 5}' font-size='14'>{escape(label[:34])}</text>")
        if interval:
            parts.append(f"<line x1='{x(interval[0]):.1f}' y1='{y}' x2='{x(interval[1]):.1f}' y2='{y}' "
                         f"stroke='{color}' stroke-width='4'/>")  # fmt: skip
        if mean is not None:
            shown = f"{mean:.3g}" + (f" [{interval[0]:.3g}, {interval[1]:.3g}]" if interval else "")
            parts.append(
                f"<circle cx='{x(mean):.1f}' cy='{y}' r='6' fill='{color}'/>"
                f"<text x='{x(mean):.1f}' y='{y - 10}' font-size='12' text-anchor='middle'>{shown}</text>"
            )
    title = (f"B minus A is {c.difference:.3g}, 95% interval {c.interval[0]:.3g} to {c.interval[1]:.3g}; "
             f"verdict: {c.verdict}")  # fmt: skip
    return (f"<svg role='img' aria-label='{escape(title)}' viewBox='0 0 870 180' width='870' height='180' "
            f"xmlns='http://www.w3.org/2000/svg'><title>{escape(title)}</title>{''.join(parts)}</svg>")  # fmt: skip


def comparison_detail(c: Any, visible: Any) -> str:
    a, b = c.a, c.b
    side = [
        ("Evaluation", f"<a href='/evaluations/{escape(a.eval_id)}'>{escape(a.eval_id)}</a>",
         f"<a href='/evaluations/{escape(b.eval_id)}'>{escape(b.eval_id)}</a>"),
        ("Target", escape(a.target), escape(b.target)),
        ("Mean reward", _num(a.mean), _num(b.mean)),
        ("Success", f"{_num(a.successes, 'd')}/{c.rows_paired}", f"{_num(b.successes, 'd')}/{c.rows_paired}"),
        ("Truncated", _num(a.share_truncated, ".0%"), _num(b.share_truncated, ".0%")),
        ("Errored", _num(a.share_errored, ".0%"), _num(b.share_errored, ".0%")),
    ]  # fmt: skip
    measures = "".join(f"<tr><th scope='row'>{k}</th><td>{va}</td><td>{vb}</td></tr>" for k, va, vb in side)
    own = [f"mean reward: {c.reward_verdict}" if c.reward_verdict else "",
           f"success: {c.success_verdict}" if c.success_verdict else ""]  # fmt: skip
    flips = ""
    for title, page in (("Regressed", c.flipped_regressed), ("Improved", c.flipped_improved)):
        rows = "".join(
            f"<tr><td>{escape(f.row_id)}</td><td>{f.score_a:.3g} → {f.score_b:.3g}</td>"
            f"<td><pre>{escape(visible(f.completion_a))}</pre></td><td><pre>{escape(visible(f.completion_b))}</pre>"
            "</td></tr>"
            for f in page.shown
        )
        flips += (f"<h2>{title}: {page.total} row(s)</h2>" + (
            table(["Row", "Score A → B", "A's completion", "B's completion"], rows) if rows else ""))  # fmt: skip
    notes = "".join(f"<li>{escape(n)}</li>" for n in c.notes)
    return (
        f"<p class='verdict'>Verdict (B against A): <strong>{escape(c.verdict)}</strong>"
        f"{' — ' + escape('; '.join(o for o in own if o)) if any(own) else ''}</p><p>{escape(c.reason)}</p>"
        f"{interval_svg(c)}{table(['', 'A', 'B'], measures)}"
        f"<p>{c.rows_paired} rows paired, {c.rows_left_out} left out; smallest detectable difference "
        f"{_num(c.mde)}; McNemar p {_num(c.mcnemar_p)}.</p>{f'<ul>{notes}</ul>' if notes else ''}{flips}"
    )
