"""`streamhealth collector serve | token`: run the team collector, create its tokens. No logic here.

Registered by the `streamhealth` entry point next to the TUI; the agent package never imports it (nor
psycopg). Its settings are its own section (collector/settings.py: `[collector]` in the config file,
`STREAMHEALTH_COLLECTOR__*`, these flags); the agent's configuration and rules are not read, so a broken
agent config never stops a collector. The database URL may come from a variable, so a PostgreSQL
password need not be on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import platformdirs

from agent.errors import ConfigError
from agent.paths import APP_NAME
from agent.settings import Settings
from collector.settings import CollectorSettings, load_collector_settings

HELP = "the team collector: agents ship their health logs to it (docs/collector.md)"
DATABASE_ENV = "STREAMHEALTH_COLLECTOR__DATABASE"


def default_database() -> str:
    return f"sqlite:///{platformdirs.user_data_path(APP_NAME) / 'collector.sqlite3'}"


def _settings(args: argparse.Namespace, *names: str) -> CollectorSettings:
    """The [collector] section, with the flags given on the command line on top."""
    return load_collector_settings(
        getattr(args, "config", None), {name: getattr(args, name, None) for name in ("database", *names)}
    )


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
        help=f"sqlite:///PATH or postgresql://USER@HOST/DB (default: [collector] database, ${DATABASE_ENV}, "
        "else SQLite in the data folder)",
    )
    serve = actions.add_parser("serve", parents=[common, database], help="run the collector (Ctrl+C stops it)")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="TCP port (default 8766)")
    serve.add_argument(
        "--retention-days", type=float, default=None, help="keep raw records this many days (default 30)"
    )
    serve.add_argument(
        "--rollup-days", type=float, default=None, help="keep per-minute rollups this many days (default 400)"
    )
    serve.add_argument(
        "--body-deadline-s",
        type=float,
        default=None,
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
    serve.set_defaults(command=run_serve, standalone=run_serve)
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
    token.set_defaults(command=run_token, standalone=run_token)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`streamhealth collector ACTION` (the entry point calls `standalone` instead: no agent settings)."""
    return int(args.command(args))


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from agent.http.server import uvicorn_config
    from collector.app import create_app
    from collector.notify import load_notify_settings
    from collector.store import open_store, redact_database_url

    settings = _settings(args, "host", "port", "retention_days", "rollup_days", "body_deadline_s")
    notify = load_notify_settings(args.notify) if getattr(args, "notify", None) is not None else None
    url = settings.database or default_database()
    # The store's threads and the event loop hand the GIL back and forth on every batch; at the default
    # 5 ms switch interval each hand-over could add milliseconds to an ingest's latency.
    sys.setswitchinterval(0.0005)
    asyncio.run(_check_database(url))  # a clear message now, not a failed start-up inside uvicorn
    store = open_store(url)
    app = create_app(
        store,
        retention_days=settings.retention_days,
        rollup_days=settings.rollup_days,
        notify=notify,
        body_deadline_s=settings.body_deadline_s,
    )
    print(
        f"streamhealth collector on http://{settings.host}:{settings.port} (database {redact_database_url(url)})",
        file=sys.stderr,
        flush=True,
    )
    # The agent's set-up: uvicorn logs through the CLI's handler (and its redacting filter), not its own.
    config = uvicorn_config(app, host=settings.host, port=settings.port, lifespan="on")
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1


async def _check_database(url: str) -> None:
    from collector.store import open_store

    store = open_store(url)
    await store.open()  # creates the schema on first use
    await store.close()


def run_token(args: argparse.Namespace) -> int:
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

    database = _settings(args).database or default_database()

    async def add() -> None:
        store = open_store(database)
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
