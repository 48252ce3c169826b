"""MCP Apps (`io.modelcontextprotocol/ui`) for hosts that render them: a proposal card beside `launch_training`
and a run view beside `get_run`. Hosts without Apps get the tools' text as before.

The card shows what the human would approve and offers one button, which asks the host to open the review page
(`flash-mcp review`, or the guard's passkey page it links to). It never approves by itself: the app calls no
tool, and nothing the host can call from it decides spend.
"""

from __future__ import annotations

from mcp.server.apps import Apps, ResourceCsp

PROPOSAL_UI = "ui://flash/proposal"
RUN_UI = "ui://flash/run"
REVIEW_PAGE = "http://localhost:7430"  # `flash-mcp review`'s default port

_BRIDGE = """
let seq = 0;
const rpc = (method, params) => window.parent.postMessage({jsonrpc: '2.0', id: ++seq, method, params}, '*');
const note = (method, params) => window.parent.postMessage({jsonrpc: '2.0', method, params}, '*');
const text = (id, value) => { document.getElementById(id).textContent = value ?? '—'; };
window.addEventListener('message', (event) => {
  const message = event.data || {};
  if (message.id === 1 && message.result) note('ui/notifications/initialized', {});
  if (message.method === 'ui/notifications/tool-result') show((message.params || {}).structuredContent || {});
});
rpc('ui/initialize', {appInfo: {name: 'flash-mcp', version: '1'}, appCapabilities: {},
                      protocolVersion: '2026-01-26'});
"""
_STYLE = ("body{font:14px system-ui,sans-serif;margin:.6rem}dt{font-weight:600}dd{margin:0 0 .4rem}"
          "button{font:inherit;padding:.35rem .8rem}")  # fmt: skip

PROPOSAL_HTML = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Launch proposal</title>
<style>{_STYLE}</style></head><body><h1 style="font-size:1.1rem">A run waits for the human</h1>
<dl><dt>Status</dt><dd id="status"></dd><dt>Config</dt><dd id="config"></dd><dt>Plane</dt><dd id="plane"></dd>
<dt>Quote</dt><dd id="quote"></dd><dt>Proposal</dt><dd id="proposal"></dd></dl>
<button id="review" type="button">Review and approve on the review page</button>
<p><small>Approving takes the human: on the review page, or with the passkey where a spend guard runs.</small></p>
<script>{_BRIDGE}
let target = '{REVIEW_PAGE}/proposals';
function show(result) {{
  const proposal = result.proposal || {{}};
  text('status', result.status); text('config', result.config); text('plane', result.plane);
  text('quote', result.quote_usd == null ? null : '$' + Number(result.quote_usd).toFixed(2));
  text('proposal', proposal.id);
  if (proposal.id) target = '{REVIEW_PAGE}/proposals/' + encodeURIComponent(proposal.id);
}}
document.getElementById('review').addEventListener('click', () => rpc('ui/open-link', {{url: target}}));
</script></body></html>"""

RUN_HTML = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Run</title>
<style>{_STYLE}</style></head><body><h1 style="font-size:1.1rem" id="run">Run</h1>
<dl><dt>State</dt><dd id="state"></dd><dt>Step</dt><dd id="step"></dd><dt>Latest metrics</dt><dd id="metrics"></dd>
<dt>Cost</dt><dd id="cost"></dd><dt>Warnings</dt><dd id="warnings"></dd></dl>
<script>{_BRIDGE}
function show(run) {{
  text('run', 'Run ' + (run.run_id || '')); text('state', run.state);
  text('step', run.step == null ? null : run.step + ' / ' + (run.total_steps ?? '?'));
  text('metrics', Object.entries(run.latest_metrics || {{}}).map(([k, v]) => k + ' ' + v).join(', '));
  text('cost', run.cost_usd == null ? null : '$' + Number(run.cost_usd).toFixed(2));
  text('warnings', (run.warnings || []).join(' · ') || 'none');
}}
</script></body></html>"""


def apps() -> Apps:
    """The extension: two `ui://` resources, served offline (no outside assets, no network)."""
    extension = Apps()
    none = ResourceCsp(connect_domains=[], resource_domains=[])
    extension.add_html_resource(PROPOSAL_UI, PROPOSAL_HTML, title="Launch proposal", csp=none, prefers_border=True)
    extension.add_html_resource(RUN_UI, RUN_HTML, title="Run", csp=none, prefers_border=True)
    return extension
