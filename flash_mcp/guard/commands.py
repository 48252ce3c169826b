"""`flash-mcp guard ...`: run the guard, give it the Flash key, and the human's approve/deny/status."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flash_mcp.core.advice import INSTALLED_GUARD, guard_command, guard_install_command
from flash_mcp.core.errors import UserError
from flash_mcp.core.visible import one_line, visible_controls
from flash_mcp.guard import install

if TYPE_CHECKING:
    import httpx

    from flash_mcp.guard.daemon import Guard

DEFAULT_HOME = Path("/var/lib/flash-mcp-guard")
DEFAULT_SOCKET = Path("/run/flash-mcp-guard/guard.sock")
PAGE_PORT = 7431


def _unguarded() -> str:
    return (
        "no spend guard is running here (unguarded mode): an agent with a shell as this user can approve runs, "
        f"raise budgets and read the Flash key. Install the guard: `{guard_install_command()}`"
    )


def add_guard_commands(commands: Any) -> None:
    guard = commands.add_parser("guard", help="the spend guard: key, budgets and approvals out of the agent's reach")
    acts = guard.add_subparsers(required=True, metavar="ACT")
    run = acts.add_parser("run", help="serve the guard in the foreground (its service does this)")
    run.add_argument("--human-uid", type=int, required=True, help="the uid of the human it serves")
    run.add_argument("--page-port", type=int, default=PAGE_PORT, help="the approval page's loopback port")
    run.add_argument("--human-command", default=str(INSTALLED_GUARD), help="the flash-mcp its advice names")
    _places(run)
    run.set_defaults(handler=_run)
    status = acts.add_parser("status", help="is a guard running here, and what it holds")
    status.add_argument("--socket", type=Path, default=DEFAULT_SOCKET)
    status.set_defaults(handler=_status)
    login = acts.add_parser("login", help="give the guard the Flash API key (read from stdin; run with sudo)")
    login.add_argument("--api-url", default=None, help="the Flash API (default: the hosted one)")
    login.add_argument("--home", type=Path, default=DEFAULT_HOME)
    login.set_defaults(handler=_login)
    setup = acts.add_parser("install", help="create the guard's user and service and start it (run with sudo)")
    setup.add_argument("--human-user", required=True, help="the login name of the human whose agent it guards")
    setup.add_argument("--python", type=Path, default=Path(sys.executable), help="a root-owned interpreter")
    setup.add_argument("--root", type=Path, default=Path("/"), help=argparse.SUPPRESS)  # tests install in a folder
    setup.add_argument("--no-systemd", action="store_true", help="start it now instead of as a systemd service")
    setup.set_defaults(handler=_install)
    remove = acts.add_parser("uninstall", help="stop and remove the guard (run with sudo)")
    remove.add_argument("--purge", action="store_true", help="also delete its key, proposals, ledger and audit")
    remove.add_argument("--root", type=Path, default=Path("/"), help=argparse.SUPPRESS)
    remove.add_argument("--no-systemd", action="store_true")
    remove.set_defaults(handler=_uninstall)
    passkey = acts.add_parser("passkey", help="print the one-time link that registers your passkey (run with sudo)")
    passkey.add_argument("--socket", type=Path, default=DEFAULT_SOCKET)
    passkey.set_defaults(handler=_passkey)
    setting = acts.add_parser("set", help="change the guard's budgets or approval policy (run with sudo)")
    setting.add_argument("changes", nargs="+", metavar="KEY=VALUE", help="e.g. budget.daily_usd=200")
    setting.add_argument("--socket", type=Path, default=DEFAULT_SOCKET)
    setting.set_defaults(handler=_set)
    for name, text in (("approve", "approve a guard proposal: the guard submits it"), ("deny", "deny one")):
        act = acts.add_parser(name, help=text + " (run with sudo)")
        act.add_argument("proposal_id")
        act.add_argument("--socket", type=Path, default=DEFAULT_SOCKET)
        if name == "deny":
            act.add_argument("--reason", default=None, help="why, in your words: the agent reads it")
        act.set_defaults(handler=_decide, act=name)


def _install(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print(f"flash-mcp: run `{guard_install_command()}`", file=sys.stderr)
        return 1
    systemd, layout = not args.no_systemd and Path("/run/systemd/system").is_dir(), install.Layout(args.root)
    try:
        print(install.install(args.human_user, layout, args.python, systemd))
    except UserError as exc:
        print(f"flash-mcp: {exc}", file=sys.stderr)
        return 1
    print(
        f"next: `{guard_command('login', program=layout.command)}` gives it the Flash key (the guard's "
        "commands run from its own root-owned copy now); then remove the key from ~/.flash/config.json"
    )
    return 0


def _uninstall(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print(f"flash-mcp: run `{guard_command('uninstall')}`", file=sys.stderr)
        return 1
    systemd = not args.no_systemd and Path("/run/systemd/system").is_dir()
    print(install.uninstall(install.Layout(args.root), systemd, args.purge))
    return 0


def _places(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="the guard's state directory")
    parser.add_argument("--socket", type=Path, default=DEFAULT_SOCKET)


def _run(args: argparse.Namespace) -> int:
    from flash_mcp.guard.daemon import Guard, GuardServer  # the passkey stack: only the guard's own start needs it
    from flash_mcp.guard.web import ApprovalPageServer

    args.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        guard = Guard(args.home, args.human_uid, human_command=args.human_command)
    except UserError as exc:  # e.g. a guard.db from a newer flash-mcp: refused, left as it was
        print(f"flash-mcp guard: {exc}", file=sys.stderr)
        return 1
    page = ApprovalPageServer(guard, args.page_port)
    threading.Thread(target=page.serve_forever, daemon=True).start()
    server = GuardServer(args.socket, guard)
    for proposal in _reconciled(guard):
        print(f"flash-mcp guard: {proposal.id} was left mid-submit: now {proposal.status}", file=sys.stderr)
    print(f"flash-mcp guard: serving uid {args.human_uid} on {args.socket}, the page on {page.url('/')}",
          file=sys.stderr, flush=True)  # fmt: skip
    try:
        server.serve_forever()
    finally:
        server.server_close()
        page.server_close()
    return 0


def _set(args: argparse.Namespace) -> int:
    changes = {}
    for item in args.changes:
        key, _, text = item.partition("=")
        try:
            changes[key] = json.loads(text)
        except ValueError:
            changes[key] = text
    code, answer = _call(args.socket, "POST", "/guard/v1/settings", {"set": changes})
    if code != 200:
        print(f"flash-mcp: {_message(answer)}", file=sys.stderr)
        return 1
    if answer["status"] == "pending":
        looser = ", ".join(answer["looser"])
        print(f"{looser} would loosen the guard: confirm with your passkey at {answer['confirm_at']}")
    else:
        print("applied")
    return 0


def _reconciled(guard: Guard) -> list:
    try:
        return guard.reconcile()
    except Exception as exc:  # Flash unreachable at start: the proposals stay `submitting`, never resubmitted
        print(f"flash-mcp guard: could not reconcile proposals left mid-submit ({exc})", file=sys.stderr)
        return []


def _passkey(args: argparse.Namespace) -> int:
    code, answer = _call(args.socket, "POST", "/guard/v1/passkeys/enrol")
    if code != 200:
        print(f"flash-mcp: {_message(answer)}", file=sys.stderr)
        return 1
    print(f"open this link in your browser within 15 minutes to register your passkey:\n{answer['url']}")
    return 0


def _client(socket: Path) -> httpx.Client:
    import httpx  # only a command that talks to the guard needs it; `serve` builds this parser too

    return httpx.Client(base_url="http://flash-guard", transport=httpx.HTTPTransport(uds=str(socket)), timeout=1800)


def _call(socket: Path, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    import httpx

    try:
        with _client(socket) as client:
            response = client.request(method, path, json=body)
    except httpx.TransportError:
        raise SystemExit(f"flash-mcp: {_unguarded()}") from None
    return response.status_code, response.json()


def _status(args: argparse.Namespace) -> int:
    code, answer = _call(args.socket, "GET", "/guard/v1/status")
    print(json.dumps(answer, indent=1))
    return 0 if code == 200 else 1


def _login(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print(f"flash-mcp: run `{guard_command('login')}`: only root writes the guard's key", file=sys.stderr)
        return 1
    key = sys.stdin.readline().strip() if not sys.stdin.isatty() else getpass.getpass("Flash API key: ").strip()
    if not key:
        print("flash-mcp: no key given; nothing was saved", file=sys.stderr)
        return 1
    from flash_mcp.guard.upstream import HOSTED_API_URL, Upstream, save_upstream

    api_url = (args.api_url or HOSTED_API_URL).rstrip("/")
    save_upstream(args.home, Upstream(api_url, key))
    owner = args.home.stat()
    os.chown(args.home / "flash.json", owner.st_uid, owner.st_gid)  # the guard's user reads it; no one else
    print(f"the guard keeps the Flash key for {api_url} in {args.home} (readable by its user only)")
    return 0


def _decide(args: argparse.Namespace) -> int:
    code, proposal = _call(args.socket, "GET", f"/guard/v1/proposals/{args.proposal_id}")
    if code != 200:
        print(f"flash-mcp: {_message(proposal)}", file=sys.stderr)
        return 1
    status = _call(args.socket, "GET", "/guard/v1/status")[1]
    if args.act == "approve" and status.get("passkey"):
        print(f"approve it with your passkey, in the browser: {status['page']}/proposals/{args.proposal_id}")
        return 0
    summary = one_line(visible_controls(str(proposal["summary"])), 300)  # the agent wrote it: no escapes, one line
    print(f"{proposal['id']}: {summary} — ${proposal['quote_usd']:.2f} (Flash's dry-run quote)")
    print(f"submits {proposal['path']} with body digest {proposal['digest']}")
    body = {"digest": proposal["digest"]} if args.act == "approve" else {"reason": getattr(args, "reason", None)}
    code, answer = _call(args.socket, "POST", f"/guard/v1/proposals/{args.proposal_id}/{args.act}", body)
    if code != 200:
        print(f"flash-mcp: {_message(answer)}", file=sys.stderr)
        return 1
    print(f"{answer['id']} {answer['status']}" + (f": run {answer['run_id']}" if answer.get("run_id") else ""))
    return 0 if answer["status"] in ("submitted", "denied") else 1


def _message(answer: dict) -> str:
    detail = answer.get("detail")
    return str(detail.get("message") if isinstance(detail, dict) else detail)
