"""The exception tree of the agent. Foreign errors are translated once, at the boundary.

    StreamHealthError            base: carries a message a user can act on
    ├── ConfigError              a settings file, env var or rule is wrong (exit code 2)
    ├── SourceUnavailable        a thing we measure cannot be reached right now (OBS, ingest, ...)
    │   ├── AuthenticationFailed the peer refused our credentials: retrying will not help
    │   └── rtmp.errors.IngestError  RTMP ingest failures: unreachable, timeout, connection lost,
    │                                rejected (see agent/rtmp/errors.py)
    ├── ProtocolError            a peer sent bytes we cannot parse; drop that connection, keep serving
    └── BindRefused              the API would be exposed beyond loopback without a token

Every message says what failed and what to do next, and never contains a secret in clear:
messages go through `agent.redact.redact` before they reach a log, the API or the terminal.
"""

from __future__ import annotations


class StreamHealthError(Exception):
    """Base of every error we raise on purpose; `str(err)` is fit to show a user."""


class ConfigError(StreamHealthError):
    """Configuration is invalid: names the file, the field path and the reason."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.field = field


class SourceUnavailable(StreamHealthError):
    """A source cannot measure right now; the runtime marks it stale and retries with backoff."""


class AuthenticationFailed(SourceUnavailable):
    """Credentials were refused. Retrying with the same credentials would only hammer the peer."""


class ProtocolError(StreamHealthError):
    """A peer sent data that does not follow the protocol."""


class BindRefused(StreamHealthError):
    """Cannot or will not serve the API: a non-loopback address without `api.token`, or a busy port."""


class PortBusy(BindRefused):
    """The API's port is taken (another agent?): nothing was started, the caller may pick another port."""
