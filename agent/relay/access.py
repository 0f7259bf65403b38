"""Who may publish to the relay, and how the relay opens its connections to ingests (TLS trust).

The relay listens on loopback by default; beyond it the settings demand `relay.publish_key`, and a
publisher using another key is refused the way nginx-rtmp refuses one (NetStream.Publish.BadName).
rtmps:// toward ingests is always verified: `relay.ca_file` adds CAs to the system's, it never turns
verification off. Not for the RTMP protocol itself (publisher.py, agent/rtmp/client.py).
"""

from __future__ import annotations

import hmac
import ssl

from agent.relay.destination import PublisherFactory
from agent.relay.settings import RelaySettings
from agent.rtmp.client import RtmpPublisher


def publish_key_matches(settings: RelaySettings, stream_name: str) -> bool:
    """Whether a publish may go ahead: always without a publish_key, else only with that key
    (anything after "?" in the stream name, e.g. OBS's or a platform's parameters, is not the key)."""
    expected = settings.publish_key
    if expected is None:
        return True
    given = stream_name.partition("?")[0].encode()
    return hmac.compare_digest(given, expected.get_secret_value().encode())


def ingest_ssl_context(settings: RelaySettings) -> ssl.SSLContext:
    """The system's CAs plus relay.ca_file; hostname checking and verification stay on."""
    context = ssl.create_default_context()
    if settings.ca_file is not None:
        context.load_verify_locations(cafile=str(settings.ca_file))
    return context


def ingest_connector(settings: RelaySettings) -> PublisherFactory:
    """Connections to ingests. The TLS context is made at the first rtmps:// connection and kept: loading
    the system's CAs costs 2.5 MB of the agent's 70 MB and about 20 ms, and most ingests (Twitch's,
    TikTok's) are plain rtmp://. A bad relay.ca_file is still refused at start-up (settings_relay.py)."""
    contexts: list[ssl.SSLContext] = []

    def connect(url: str) -> RtmpPublisher:
        if not contexts and url.strip().lower().startswith("rtmps:"):
            contexts.append(ingest_ssl_context(settings))
        return RtmpPublisher(
            url,
            chunk_size=settings.chunk_size,
            timeout_s=settings.ingest_timeout_s,
            ssl_context=contexts[0] if contexts else None,
        )

    return connect
