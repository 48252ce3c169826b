"""The review page's HTML: plain forms, no scripts, no third-party assets, every control labelled."""

from __future__ import annotations

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
        "<a href='/runs'>Runs</a><a href='/spend'>Spend and audit</a></nav>"
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


def proposals_table(proposals: list[ProposalView]) -> str:
    if not proposals:
        return "<p>No proposals yet: a paid launch the agent makes waits here for you.</p>"
    rows = "".join(
        f"<tr><td><a href='/proposals/{escape(p.id)}'>{escape(p.id)}</a></td><td>{escape(p.status)}</td>"
        f"<td>{escape(p.plane)}</td><td>{escape(p.config)}</td><td>${p.quote_usd:.2f}</td>"
        f"<td>{escape(p.run_id or '')}</td></tr>"
        for p in proposals
    )
    return f"<table><thead><tr><th>Proposal</th><th>Status</th><th>Plane</th><th>Config</th><th>Quote</th>" \
           f"<th>Run</th></tr></thead><tbody>{rows}</tbody></table>"  # fmt: skip


def proposal_detail(p: ProposalView, csrf: str, budget_after: list[str], reason: str | None) -> str:
    allows = (f"one submit of exactly the run below to the {escape(p.plane)} plane, for up to ${p.quote_usd:.2f} "
              f"({escape(p.quote_label)})")  # fmt: skip
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
        f"<p>Approving allows {allows}.</p><ul>{''.join(f'<li>{escape(b)}</li>' for b in budget_after)}</ul>"
        f"{decide}<h2>Changes against the config file</h2><pre>{escape(p.config_diff or 'none')}</pre>"
        f"<h2>Data it trains on</h2><ul>{data}</ul>"
        f"<h2>The run exactly as it will be submitted</h2><pre>{escape(json.dumps(p.run, indent=1))}</pre>"
    )


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
    return f"<table><thead><tr><th>Run</th><th>State</th><th>Step</th><th>Algorithm</th><th>Model</th>" \
           f"<th>Cost</th></tr></thead><tbody>{rows}</tbody></table>"  # fmt: skip


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
    return f"{picker}<table><thead><tr><th>Event</th><th>Facts</th></tr></thead><tbody>{rows}</tbody></table>"


def _facts(event: dict[str, Any]) -> str:
    return json.dumps(event, default=str)[:400]
