"""The `flash-mcp` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from flash_mcp import __version__

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
    serve.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    serve.set_defaults(handler=_serve)

    tiny = commands.add_parser("tiny-model", help="build a tiny random chat model offline, for local rehearsals")
    tiny.add_argument("directory", help="where to write the model and tokenizer")
    tiny.set_defaults(handler=_tiny_model)
    return parser


def _tiny_model(args: argparse.Namespace) -> int:
    from pathlib import Path

    from flash_mcp.planes.local.models import build_tiny_model

    path = build_tiny_model(Path(args.directory))
    print(f'built a tiny chat model in {path}; set [local] stand_in_model = "{path.resolve()}" in settings.toml')
    return 0


def _serve(args: argparse.Namespace) -> int:
    from flash_mcp.domain.errors import UserError
    from flash_mcp.server import build_server
    from flash_mcp.settings import ServerSettings

    try:
        settings = ServerSettings.create(workspace=args.workspace, plane=args.plane)
    except (UserError, ValueError) as exc:
        print(f"flash-mcp: {exc}", file=sys.stderr)
        return 2
    server = build_server(settings)
    log.info("workspace %s, plane %s, state %s", settings.workspace.root, settings.plane, settings.home)
    if not args.http:
        server.run()
        return 0
    return _serve_http(server, args.host, args.port)


def _serve_http(server, host: str, port: int) -> int:
    import uvicorn

    from flash_mcp.transport import MCP_PATH, ConfigurationError, build_http_app

    try:
        app = build_http_app(server, host, os.environ.get("FLASH_MCP_TOKEN") or None)
    except ConfigurationError as exc:
        print(f"flash-mcp: {exc}", file=sys.stderr)
        return 2
    log.info("serving MCP at http://%s:%d%s", host, port, MCP_PATH)
    uvicorn.run(app, host=host, port=port, log_level="warning", log_config=None)
    return 0
