"""What can go wrong talking RTMP to an ingest, as errors a streamer can act on.

    SourceUnavailable (agent.errors)
    └── IngestError                 base of everything below; `str(err)` says what to do next
        ├── IngestUnreachable       DNS, TCP connect or TLS failed: nothing RTMP happened yet
        ├── IngestTimeout           the ingest stopped answering (handshake, a command, sending)
        ├── IngestConnectionLost    the ingest closed or reset the connection while we streamed
        └── IngestRejected          (also AuthenticationFailed) the app or the stream key was refused
    ProtocolError (agent.errors)    the ingest sent bytes that are not RTMP

Messages never carry the stream key: URLs go through `agent.redact.redact_url`.
"""

from __future__ import annotations

from agent.errors import AuthenticationFailed, SourceUnavailable


class IngestError(SourceUnavailable):
    """Base of RTMP ingest failures."""


class IngestUnreachable(IngestError):
    """The ingest could not be reached (DNS, TCP, TLS)."""


class IngestTimeout(IngestError):
    """The ingest did not answer within the deadline."""


class IngestConnectionLost(IngestError):
    """The ingest closed or reset the connection."""


class IngestRejected(IngestError, AuthenticationFailed):
    """The ingest refused the application or the stream key; retrying the same URL will not help."""
