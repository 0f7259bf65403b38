"""What the publisher says when publishing fails: each failure as an `agent.rtmp.errors` exception whose
message names the next step, and never the stream key.

Words only, no I/O: the publisher (client.py) decides when something failed and at which stage; this
module decides how to say it. The relay's destinations can reuse the same wording.
"""

from __future__ import annotations

import ssl

from agent.errors import ProtocolError
from agent.peer_text import printable
from agent.redact import MARK, redact
from agent.rtmp import messages as m
from agent.rtmp.errors import IngestConnectionLost, IngestRejected, IngestUnreachable
from agent.rtmp.url import RtmpUrl


def connect_failure(url: RtmpUrl, exc: TimeoutError | OSError, timeout_s: float) -> IngestUnreachable:
    """Why the TCP or TLS connection to the ingest could not be opened."""
    where = f"{url.host}:{url.port}"
    if isinstance(exc, TimeoutError):
        return IngestUnreachable(
            f"could not connect to the ingest at {where} within {timeout_s:g} s: check ingest.primary and your network"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return IngestUnreachable(
            f"the TLS certificate of {url.host} could not be verified ({exc.verify_message}): "
            "check the host in ingest.primary (rtmps:// needs the ingest's real name); for an ingest behind a "
            "private CA, add that CA with relay.ca_file (verification stays on)"
        )
    if isinstance(exc, ssl.SSLError):
        return IngestUnreachable(
            f"TLS with the ingest at {where} failed ({exc.reason}): is it really rtmps:// on port {url.port}?"
        )
    reason = exc.strerror or str(exc) or type(exc).__name__
    return IngestUnreachable(
        f"could not connect to the ingest at {where}: {reason}: check ingest.primary and your network"
    )


def timeout_message(url: RtmpUrl, what: str, timeout_s: float) -> str:
    return (
        f"the ingest at {url.host}:{url.port} did not answer {what} within {timeout_s:g} s: "
        "it may be overloaded or the link may be down; try again or check ingest.primary"
    )


def scrub(url: RtmpUrl, text: str) -> str:
    """`text` without the stream key, even where `redact` would not recognise it (an ingest's own words)."""
    key = url.stream_key
    for secret in (key, key.partition("?")[0]):
        if secret:
            text = text.replace(secret, MARK)
    return redact(text)


def describe_status(url: RtmpUrl, command: m.Command) -> str:
    """An onStatus / _error answer as `code description`, scrubbed."""
    info = command.info
    text = " ".join(str(part) for part in (info.get("code"), info.get("description")) if part) or command.name
    return scrub(url, printable(text))  # the ingest's own words go to the log, the API and the TUI


def lost_error(url: RtmpUrl, stage: str, cause: BaseException | None) -> Exception:
    """The connection ended (`cause`: None or EOFError when closed) while the publisher was at `stage`."""
    if isinstance(cause, ProtocolError):
        return ProtocolError(f"the ingest at {url.host}:{url.port} sent invalid RTMP: {cause}")
    reason = (
        "closed the connection" if cause is None or isinstance(cause, EOFError) else f"reset the connection ({cause})"
    )
    where = f"the ingest at {url.host}:{url.port}"
    if stage == "connect":
        return IngestRejected(
            f"{where} {reason} when we connected to application '{url.app}': "
            "check the application part of ingest.primary (rtmp://host/APP/key)"
        )
    if stage == "publish":
        return IngestRejected(
            f"{where} {reason} when we published: it rejected the stream key; check ingest.primary "
            "(and that nothing else is already streaming to it)"
        )
    if stage == "handshake":
        return IngestConnectionLost(
            f"{where} {reason} during the RTMP handshake: is {url.scheme}://{url.host}:{url.port} "
            "an RTMP server (rtmps:// needs TLS, rtmp:// must not use it)?"
        )
    return IngestConnectionLost(f"{where} {reason} while {stage}: check your network and the ingest's status")
