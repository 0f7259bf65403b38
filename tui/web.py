"""`streamhealth web`: the same TUI in a browser, for a technician on another machine or a phone.

textual-serve (Textualize's) does the work: each browser tab gets its own TUI process (`streamhealth tui
--agent URL`, or `--collector URL` for the fleet) whose screen its bundled terminal renderer draws; closing
the tab ends that process. What is ours: the page (every file it loads comes from this server, no web font
from the internet), the address check (loopback by default; any other bind needs api.token), the token asked
once in the browser and kept as a cookie that is not the token, a bound on browsers, and a start-up line.
Not for the API: the browser never talks to the agent, only its TUI process does.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
import textual_serve
from aiohttp import web
from textual_serve.server import Server

from agent.errors import BindRefused
from agent.net.addresses import is_loopback_host
from agent.redact import register_secret
from agent.settings import Settings
from tui.cli import COLLECTOR_TOKEN_ENV, configured_url

log = logging.getLogger(__name__)

HELP = "serve the TUI to web browsers (one TUI process per browser tab)"
DEFAULT_PORT = 8770
DEFAULT_MAX_BROWSERS = 8
COOKIE = "streamhealth_web"
LOGIN_BODY_MAX_BYTES = 4096  # a token and a form field name; anything bigger is refused before it is read
WRONG_TOKEN_DELAY_S = 1.0  # slows guessing; one guess a second per connection
PAGES = Path(__file__).parent / "web_pages"
STATIC = Path(textual_serve.__file__).parent / "static"


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser("web", parents=[common], help=HELP, description=HELP + ".")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--agent", metavar="URL", default=None, help="agent to watch (default: the configured api.host:api.port)"
    )
    parser.add_argument(
        "--collector",
        metavar="URL",
        default=None,
        help=f"show the fleet of this collector instead (its read token from ${COLLECTOR_TOKEN_ENV})",
    )
    parser.add_argument(
        "--max-browsers",
        type=int,
        default=DEFAULT_MAX_BROWSERS,
        help=f"browser tabs served at once, each one TUI process (default {DEFAULT_MAX_BROWSERS})",
    )
    parser.set_defaults(command=run)


def tui_command(args: argparse.Namespace, settings: Settings) -> str:
    """The command each browser runs. No secret in it (a command line is visible to every user of the
    machine): the TUI reads api.token from the same config and environment as this server."""
    argv = [sys.executable, "-m", "tui.cli"]
    if getattr(args, "config", None):
        argv += ["--config", str(args.config)]
    if args.collector:
        argv += ["tui", "--collector", args.collector]
    else:
        argv += ["tui", "--agent", args.agent or configured_url(settings)]
    return "exec " + shlex.join(argv)  # exec: the shell textual-serve starts becomes the TUI itself


def run(args: argparse.Namespace, settings: Settings) -> int:
    token = settings.api.token.get_secret_value() if settings.api.token else None
    if not is_loopback_host(args.host) and token is None:
        raise BindRefused(
            f"refusing to serve the TUI on {args.host}: that address is reachable from other machines and "
            "api.token is not set. Set api.token (or STREAMHEALTH_API__TOKEN), or keep --host 127.0.0.1."
        )
    if token:
        register_secret(token)
    if args.collector and os.environ.get(COLLECTOR_TOKEN_ENV):
        register_secret(os.environ[COLLECTOR_TOKEN_ENV])
    server = WebServer(tui_command(args, settings), args.host, args.port, token, max(1, args.max_browsers))
    watched = args.collector or args.agent or configured_url(settings)
    print(
        f"streamhealth web: http://{_url_host(args.host)}:{args.port}/ shows the TUI of {watched} "
        f"(one TUI process per browser tab, at most {server.max_browsers}"
        f"{'; the browser asks for api.token once' if token else ''}). Ctrl+C stops.",
        flush=True,
    )
    server.serve()
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class WebServer(Server):
    """textual-serve's server with our page, the token check and a bound on browsers."""

    def __init__(self, command: str, host: str, port: int, token: str | None, max_browsers: int) -> None:
        super().__init__(command, host=host, port=port, title="streamhealth", statics_path=STATIC)
        self.token = token
        # The cookie proves the token was typed here without being the token: a stolen cookie does not
        # give the agent's API token away.
        self._cookie = (
            hmac.new(token.encode(), b"streamhealth web session", hashlib.sha256).hexdigest() if token else ""
        )
        self.max_browsers = max_browsers
        self.browsers = 0

    def initialize_logging(self) -> None:
        """Ours is set up by the CLI already (textual-serve would add its own handler and banner)."""

    async def on_startup(self, app: web.Application) -> None:
        log.info("serving the TUI on %s:%s", self.host, self.port)

    async def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=LOGIN_BODY_MAX_BYTES, middlewares=[self._guard])
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(PAGES))
        app.add_routes(
            [
                web.get("/", self.handle_index, name="index"),
                web.post("/login", self.handle_login, name="login"),
                web.get("/ws", self.handle_websocket, name="websocket"),
                web.static("/static", STATIC, name="static"),
            ]
        )
        app.on_startup.append(self.on_startup)
        return app

    def _signed_in(self, request: web.Request) -> bool:
        return self.token is None or hmac.compare_digest(request.cookies.get(COOKIE, ""), self._cookie)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/login" or self._signed_in(request):
            response: web.StreamResponse = await handler(request)
            return response
        if request.path == "/":
            return _login_page(request, wrong=False)
        raise web.HTTPUnauthorized(text="sign in at / first")

    async def handle_login(self, request: web.Request) -> web.StreamResponse:
        if self.token is None:
            raise web.HTTPSeeOther("/")
        form = await request.post()
        given = form.get("token")
        if isinstance(given, str) and hmac.compare_digest(given.encode(), self.token.encode()):
            response = web.HTTPSeeOther("/")
            response.set_cookie(COOKIE, self._cookie, httponly=True, samesite="Strict", secure=request.secure)
            raise response
        log.warning("a wrong token was typed in a browser at %s", request.remote)
        await asyncio.sleep(WRONG_TOKEN_DELAY_S)
        return _login_page(request, wrong=True)

    async def handle_index(self, request: web.Request) -> web.Response:
        scheme = "wss" if request.secure else "ws"
        context = {
            "title": "streamhealth",
            "static_url": "/static/",
            "websocket_url": f"{scheme}://{request.host}/ws",  # as the browser reached us, not our bind address
            "font_size": _int(request.query.get("fontsize"), 16),
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            raise web.HTTPForbidden(text="another site's page may not open a TUI here")
        if self.browsers >= self.max_browsers:
            raise web.HTTPServiceUnavailable(text=f"{self.max_browsers} browsers are watching already")
        self.browsers += 1
        try:
            return await super().handle_websocket(request)
        finally:
            self.browsers -= 1

    def serve(self, debug: bool = False) -> None:
        web.run_app(self._make_app(), host=self.host, port=self.port, print=None, access_log=None)


def _login_page(request: web.Request, *, wrong: bool) -> web.Response:
    """Asked once per browser; 401 after a wrong token, so nothing but this form is served."""
    text = aiohttp_jinja2.render_string("login.html", request, {"wrong": wrong})
    return web.Response(text=text, content_type="text/html", status=401 if wrong else 200)


def _int(value: str | None, default: int) -> int:
    try:
        return max(6, min(48, int(value))) if value else default
    except ValueError:
        return default
