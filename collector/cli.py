"""`streamhealth collector serve | token`: run the team collector, create its tokens. No logic here.

Registered by the `streamhealth` entry point next to the TUI; the agent package never imports it (nor
psycopg). The database URL may come from STREAMHEALTH_COLLECTOR_DATABASE, so a PostgreSQL password need
not be on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import platformdirs

from agent.errors import ConfigError
from agent.paths import APP_NAME
from agent.settings import Settings

HELP = "the team collector: agents ship their health logs to it (docs/collector.md)"
DATABASE_ENV = "STREAMHEALTH_COLLECTOR_DATABASE"
DEFAULT_PORT = 8766


def default_database() -> str:
    return os.environ.get(DATABASE_ENV) or f"sqlite:///{platformdirs.user_data_path(APP_NAME) / 'collector.sqlite3'}"


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser("collector", parents=[common], help=HELP, description=HELP + ".")
    actions = parser.add_subparsers(title="collector commands", metavar="ACTION", required=True)
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--database",
        metavar="URL",
        default=None,
        help=f"sqlite:///PATH or postgresql://USER@HOST/DB (default: ${DATABASE_ENV}, else SQLite in the data folder)",
    )
    serve = actions.add_parser("serve", parents=[common, database], help="run the collector (Ctrl+C stops it)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    serve.add_argument(
        "--retention-days", type=float, default=30.0, help="keep raw records this many days (default 30)"
    )
    serve.add_argument(
        "--rollup-days", type=float, default=400.0, help="keep per-minute rollups this many days (default 400)"
    )
    serve.add_argument(
        "--body-deadline-s",
        type=float,
        default=20.0,
        help="a batch's body must arrive within this many seconds of its headers, else 408 (default 20)",
    )
    serve.add_argument(
        "--notify",
        metavar="FILE",
        type=Path,
        default=None,
        help="send fleet alerts (lost contact, agents' critical alerts) to the webhooks of the [notify] section "
        "of this TOML file (docs/fleet.md); on one collector only",
    )
    serve.set_defaults(command=run_serve)
    token = actions.add_parser(
        "token", parents=[common, database], help="create a token and print it once (it is stored hashed)"
    )
    token.add_argument("name", help="who the token is for: an agent (studio-pc) or a person / dashboard")
    token.add_argument("--reader", action="store_true", help="a read token (API, events, /metrics), not an agent's")
    token.add_argument(
        "--agent-id",
        metavar="ID",
        default=None,
        help="the agent this token writes for (its id, in the agent's .streamhealth-agent.json); default: the "
        "first id it sends, bound for good",
    )
    token.set_defaults(command=run_token)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`streamhealth collector ACTION`: the action chosen on the command line."""
    return int(args.command(args, settings))


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from collector.app import create_app
    from collector.notify import load_notify_settings
    from collector.store import open_store, redact_database_url

    notify = load_notify_settings(args.notify) if getattr(args, "notify", None) is not None else None
    url = args.database or default_database()
    # The store's threads and the event loop hand the GIL back and forth on every batch; at the default
    # 5 ms switch interval each hand-over could add milliseconds to an ingest's latency.
    sys.setswitchinterval(0.0005)
    asyncio.run(_check_database(url))  # a clear message now, not a failed start-up inside uvicorn
    store = open_store(url)
    app = create_app(
        store,
        retention_days=args.retention_days,
        rollup_days=args.rollup_days,
        notify=notify,
        body_deadline_s=args.body_deadline_s,
    )
    print(
        f"streamhealth collector on http://{args.host}:{args.port} (database {redact_database_url(url)})",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="on", http="httptools"
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1


async def _check_database(url: str) -> None:
    from collector.store import open_store

    store = open_store(url)
    await store.open()  # creates the schema on first use
    await store.close()


def run_token(args: argparse.Namespace, settings: Settings) -> int:
    from collector.auth import AGENT_ID
    from collector.store import StoreError, open_store
    from collector.tokens import TokenKind, hash_token, new_token

    if not args.name.strip():
        raise ConfigError("the token needs a name")
    kind: TokenKind = "reader" if args.reader else "agent"
    if args.agent_id is not None and (args.reader or not AGENT_ID.fullmatch(args.agent_id)):
        raise ConfigError(
            "--agent-id is an agent's id (1 to 100 letters, digits, '.', '_', ':' or '-') for an agent token"
        )
    token = new_token(kind)

    async def add() -> None:
        store = open_store(args.database or default_database())
        await store.open()
        try:
            await store.add_token(args.name.strip(), kind, hash_token(token), args.agent_id)
        finally:
            await store.close()

    try:
        asyncio.run(add())
    except StoreError as exc:
        print(f"streamhealth: {exc}", file=sys.stderr)
        return 1
    print(token)
    where = "ship.token of the agent" if kind == "agent" else "Authorization: Bearer header of the reader"
    print(f"# {kind} token for {args.name.strip()!r}: shown once; put it in the {where}", file=sys.stderr)
    return 0
