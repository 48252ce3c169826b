"""The `flash-mcp` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from flash_mcp import __version__
from flash_mcp.core.advice import for_the_human, human_command

log = logging.getLogger("flash_mcp")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flash-mcp", description="An MCP server for Flash LoRA post-training.")
    parser.add_argument("-V", "--version", action="version", version=f"flash-mcp {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the MCP server (stdio by default)")
    serve.add_argument("--workspace", default=".", help="the only tree tools may touch (default: current directory)")
    serve.add_argument("--plane", choices=("local", "flash"), default=None, help="default: $FLASH_MCP_PLANE or local")
    serve.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (non-loopback needs FLASH_MCP_TOKEN)")
    serve.add_argument("--port", type=_port, default=8765, help="HTTP port, 1-65535 (default 8765)")
    serve.set_defaults(handler=_serve)

    proposals = commands.add_parser("proposals", help="list launch proposals waiting for a human")
    proposals.add_argument("--all", action="store_true", help="include decided and expired proposals")
    proposals.set_defaults(handler=_proposals)
    approve = commands.add_parser("approve", help="approve a launch proposal and submit its run")
    approve.add_argument("proposal_id")
    approve.add_argument("--yes", action="store_true", help="do not ask y/N")
    approve.set_defaults(handler=_approve)
    deny = commands.add_parser("deny", help="deny a launch proposal")
    deny.add_argument("proposal_id")
    deny.add_argument("--reason", default=None, help="why, in words the agent reads in list_proposals")
    deny.set_defaults(handler=_deny)

    spend = commands.add_parser("spend", help="spend today and this month against the budgets, per approved run")
    spend.add_argument("--plane", choices=("local", "flash"), default=None, help="default: $FLASH_MCP_PLANE or local")
    spend.add_argument("--json", action="store_true", help="print the report as JSON")
    spend.set_defaults(handler=_spend)

    compare = commands.add_parser("compare", help="did evaluation B improve on A? (the compare_evaluations verdict)")
    compare.add_argument("a", help="the baseline evaluation id")
    compare.add_argument("b", help="the candidate evaluation id")
    compare.add_argument("--chart", metavar="PNG", help="also write the comparison chart to this file")
    compare.set_defaults(handler=_compare)

    tiny = commands.add_parser("tiny-model", help="build a tiny random chat model offline, for local rehearsals")
    tiny.add_argument("directory", help="where to write the model and tokenizer")
    tiny.set_defaults(handler=_tiny_model)
    review = commands.add_parser("review", help="serve the review page on loopback and print its one-time login link")
    review.add_argument("--port", type=_port, default=7430)
    review.add_argument("--plane", choices=["local", "flash"], default=None, help="the plane its runs pages read")
    review.set_defaults(handler=_review)
    from flash_mcp.guard.commands import add_guard_commands

    add_guard_commands(commands)
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: use 1-65535 (the default is 8765)")
    return port


def _for_you(message: str) -> str:
    """Agent-facing advice, rewritten for the human at this terminal (the tools named as the agent's)."""
    from flash_mcp.surface.server.tools_cache import shipped_tool_names

    return for_the_human(message, shipped_tool_names())


def _proposals(args: argparse.Namespace) -> int:
    from flash_mcp.loop import approvals
    from flash_mcp.loop.review import proposal_text

    shown = approvals.waiting(include_decided=args.all)
    if not shown:
        print("no pending proposals")
    for proposal in shown:
        print(proposal_text(proposal))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from flash_mcp.core.errors import UserError
    from flash_mcp.core.settings import default_home
    from flash_mcp.loop import compare

    try:
        print(compare.render(compare.compare(default_home(), args.a, args.b)), end="")
        if args.chart:
            Path(args.chart).write_bytes(compare.chart(default_home(), args.a, args.b))
    except UserError as exc:
        print(f"flash-mcp compare: {_for_you(str(exc))}", file=sys.stderr)
        return 2
    return 0


def _approve(args: argparse.Namespace) -> int:
    return _decide(args, approve=True)


def _deny(args: argparse.Namespace) -> int:
    return _decide(args, approve=False)


def _decide(args: argparse.Namespace, *, approve: bool) -> int:
    """The human's side of a proposal: shown in full, y/N unless --yes, re-checked, used once."""
    import getpass

    from flash_mcp.sandbox import confined_reason

    confined = confined_reason()
    if confined:
        print(
            f"flash-mcp: refusing to decide a proposal from inside a sandbox ({confined}). Approvals come from "
            "the human's own terminal, never from code the agent runs; nothing was submitted",
            file=sys.stderr,
        )
        return 2

    from flash_mcp.core.errors import UserError
    from flash_mcp.loop import approvals
    from flash_mcp.loop.review import proposal_text

    proposal = approvals.find(args.proposal_id)
    if proposal is None:
        verb = "approve" if approve else "deny"
        where = (
            f"it is the spend guard's: `sudo {human_command('guard', verb, args.proposal_id)}` decides it"
            if args.proposal_id.startswith("gp-")
            else f"`{human_command('proposals')}` lists them"
        )
        print(f"flash-mcp: no proposal {args.proposal_id!r}; {where}", file=sys.stderr)
        return 1
    print(proposal_text(proposal))
    print(_spend_authority())
    verb = (
        ("Approve this deployment" if proposal.kind == "deployment" else "Approve and submit this run")
        if approve
        else "Deny this proposal"
    )
    if approve and not getattr(args, "yes", False) and not _confirm(f"{verb}? [y/N] "):
        print("not approved; nothing was submitted")
        return 1
    who = {"name": "flash-mcp " + ("approve" if approve else "deny"), "user": getpass.getuser()}
    try:
        if not approve:
            approvals.deny(proposal, who, reason=getattr(args, "reason", None))
            print(f"denied {proposal.id}")
            return 0
        view = _approve_logged_in(proposal, who, interactive=not getattr(args, "yes", False))
    except (UserError, ValueError) as exc:
        print(f"flash-mcp: {_for_you(str(exc))}", file=sys.stderr)
        return 1
    if view is None:
        print(f"approved {proposal.id}: the agent's next evaluate with the same arguments deploys "
              f"{proposal.run.get('deploy')} once, evaluates it and undeploys it")  # fmt: skip
        return 0
    print(f"submitted {view.run_id} on the {view.plane} plane ({view.state})")
    for note in view.notes:  # an overrun caught at submit, and what the server did about it, among them
        print(f"  note: {note}")
    return 0


def _spend_authority() -> str:
    """Whether a spend guard holds the key here; unguarded, what that leaves open, said plainly."""
    from flash_mcp.core.errors import UserError
    from flash_mcp.planes.flash.guarded import GUARDED, guard_socket, unguarded

    try:
        guarded = guard_socket() is not None
    except UserError as exc:  # installed but down: the approval will fail closed
        return f"  {exc}"
    return f"  {GUARDED if guarded else unguarded()}"


def _approve_logged_in(proposal, who: dict, *, interactive: bool):
    """Approve; a plane that needs a login first asks the human for one (`flash login`, offered at a terminal)
    and leaves the proposal pending until then."""
    import subprocess

    from flash_mcp.core.advice import flash_command, flash_program
    from flash_mcp.loop import approvals
    from flash_mcp.planes.base import PlaneUnavailable

    try:
        return approvals.approve(proposal, who)
    except PlaneUnavailable:
        flash = flash_program()
        offer = interactive and sys.stdin.isatty() and flash is not None
        if offer and _confirm("Log in to Flash now? [y/N] ") and subprocess.run([flash, "login"]).returncode == 0:
            return approvals.approve(proposal, who)
        raise PlaneUnavailable(
            f"log in to Flash first: run `{flash_command('login')}` (or set "
            f"FREESOLO_API_KEY), then `{human_command('approve', proposal.id)}` again. {proposal.id} is still "
            "pending; nothing was pushed or submitted"
        ) from None


def _confirm(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _spend(args: argparse.Namespace) -> int:
    """The human's view of spend, reconciled with the plane first (settled costs, overruns)."""
    from flash_mcp.core.errors import UserError
    from flash_mcp.core.settings import ServerSettings
    from flash_mcp.loop.spend import Spend, render
    from flash_mcp.planes import make_plane

    try:
        settings = ServerSettings.create(workspace=".", plane=args.plane)
        report = Spend(settings.home, make_plane(settings)).report()
    except (UserError, ValueError) as exc:
        print(f"flash-mcp: {_for_you(str(exc))}", file=sys.stderr)
        return 1
    print(report.model_dump_json(indent=1) if args.json else render(report).rstrip("\n"))
    return 0


def _review(args: argparse.Namespace) -> int:
    """The human's review page: proposals to approve or deny, runs, spend and the audit trail."""
    import functools

    from flash_mcp.core.settings import ServerSettings
    from flash_mcp.planes import make_plane
    from flash_mcp.review.app import ReviewServer

    settings = ServerSettings.create(workspace=".", plane=args.plane)
    planes = functools.cache(
        lambda name: make_plane(settings if name is None else ServerSettings.create(workspace=".", plane=name))
    )
    server = ReviewServer(settings.home, planes, port=args.port)
    print(f"open this link (it works once) to review what the agent proposes:\n{server.login_link()}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _tiny_model(args: argparse.Namespace) -> int:
    from pathlib import Path

    from flash_mcp.planes.local.models import build_tiny_model

    target = Path(args.directory).expanduser()
    problem = _unwritable_directory(target)
    if problem:
        print(f"flash-mcp: cannot build the model in {target}: {problem}", file=sys.stderr)
        return 1
    path = build_tiny_model(target)
    print(f'built a tiny chat model in {path}; set [local] stand_in_model = "{path.resolve()}" in settings.toml')
    return 0


def _unwritable_directory(target) -> str | None:
    """Why `target` cannot hold the model (None if it can), checked before the slow imports."""
    if target.exists() and not target.is_dir():
        return "it is a file; name a directory (it is created if missing)"
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"{exc.strerror or exc}; name a directory you can write"
    if not os.access(target, os.W_OK | os.X_OK):
        return "the directory is not writable; name a directory you can write"
    return None


def _serve(args: argparse.Namespace) -> int:
    _defer_schemas()
    from flash_mcp.core.errors import UserError
    from flash_mcp.core.settings import ServerSettings, ensure_state_dir
    from flash_mcp.server import build_server

    try:
        settings = ServerSettings.create(workspace=args.workspace, plane=args.plane)
        ensure_state_dir(settings.home)
    except (UserError, ValueError) as exc:
        print(f"flash-mcp: {_for_you(str(exc))}", file=sys.stderr)
        return 2
    server = build_server(settings)
    log.info("workspace %s, plane %s, state %s", settings.workspace.root, settings.plane, settings.home)
    if not args.http:
        from flash_mcp.transport import run_stdio

        run_stdio(server)
        return 0
    return _serve_http(server, args.host, args.port)


def _defer_schemas() -> None:
    """Pydantic builds a model's validator when the model is first used, not when its class is defined: a start
    defines hundreds (the SDK's protocol types, the tools' results) and uses a few. Only the server process."""
    import pydantic

    pydantic.BaseModel.model_config["defer_build"] = True


def _serve_http(server, host: str, port: int) -> int:
    import uvicorn

    from flash_mcp.transport import MCP_PATH, ConfigurationError, build_http_app

    try:
        app = build_http_app(server, host, os.environ.get("FLASH_MCP_TOKEN") or None)
    except ConfigurationError as exc:
        print(f"flash-mcp: {_for_you(str(exc))}", file=sys.stderr)
        return 2
    try:
        sock = _bind(host, port)
    except OSError as exc:
        print(
            f"flash-mcp: cannot listen on {host}:{port}: {exc.strerror or exc}. {_bind_hint(exc, port)}",
            file=sys.stderr,
        )
        return 1
    log.info("serving MCP at http://%s:%d%s", host, port, MCP_PATH)
    config = uvicorn.Config(app, log_level="warning", log_config=None)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _bind(host: str, port: int):
    """The listening socket, bound before anything says "serving"."""
    import socket

    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _bind_hint(exc: OSError, port: int) -> str:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return f"Another process uses port {port}: stop it (`ss -ltnp 'sport = :{port}'` shows which) or pick --port."
    if exc.errno == errno.EACCES:
        return "Ports below 1024 need privileges: pick --port 1024-65535."
    return "Check --host names an address of this machine."
