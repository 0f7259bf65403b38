"""`streamhealth bandwidth-server`: serve the speed-test endpoints (LibreSpeed-style and Speedtest Mini)."""

from __future__ import annotations

import argparse
import sys

from agent.settings import Settings

HELP = "serve speed-test endpoints for the http and speedtest backends (host it near your ingest)"


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser("bandwidth-server", parents=[common], help=HELP, description=HELP + ".")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    parser.set_defaults(command=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here: every command's parser is built at start-up, and the agent must not carry this app
    # (1 MB of its RSS) to serve its own API.
    import uvicorn

    from agent.bandwidth.server import create_app

    host = f"[{args.host}]" if ":" in args.host else args.host
    base = f"http://{host}:{args.port}"
    print(
        f"streamhealth bandwidth-server on {base}: `streamhealth bandwidth --backend http --url {base}` or "
        f"`--backend speedtest --url {base}/`; Ctrl+C stops it",
        file=sys.stderr,
        flush=True,
    )
    try:
        uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning", access_log=False)
    except SystemExit:
        print(
            f"streamhealth: cannot listen on {args.host}:{args.port} (port in use? pick another with --port)",
            file=sys.stderr,
        )
        return 2
    return 0
