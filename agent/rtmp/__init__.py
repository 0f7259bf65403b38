"""RTMP for streamhealth: a sans-I/O protocol core (handshake, chunk stream, AMF0, messages, FLV) and an asyncio
publisher on top of it. The core serves both ends of a connection, so the local relay can reuse it."""
