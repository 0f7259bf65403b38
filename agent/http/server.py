"""One uvicorn set-up for the agent and the collector: httptools with bounds on what a peer may cost before
its headers are complete (header_limits.py), no access log, and uvicorn's own logging
configuration off, so its records reach the root logger's handlers (the CLI's, with the redacting filter).

Not for running the server: each service owns its loop and its shutdown (agent/server.py, collector/cli.py).
"""

from __future__ import annotations

from typing import Any, Literal

import uvicorn
from starlette.types import ASGIApp

from agent.http.header_limits import HeaderLimitedProtocol

GRACEFUL_SHUTDOWN_S = 3


def uvicorn_config(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    lifespan: Literal["on", "off"] = "off",
    **extra: Any,
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # no handlers of its own: they would skip the redacting filter
        access_log=False,
        lifespan=lifespan,
        ws="none",
        http=HeaderLimitedProtocol,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        **extra,
    )
