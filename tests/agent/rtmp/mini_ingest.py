"""A small RTMP ingest built on the sans-I/O core in the server role, answering as nginx-rtmp does.

It exists to test the server side of the core (ffmpeg publishes to it) and answers nginx-rtmp never
gives on its own (NetStream.Publish.BadName). What it sends is what nginx sent in the recorded sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from agent.errors import ProtocolError
from agent.rtmp import messages as m
from agent.rtmp.connection import Role, RtmpConnection


@dataclass
class MiniIngest:
    port: int = 0
    reject_names: set[str] = field(default_factory=set)
    events: list[m.Event] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    closed_sessions: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = RtmpConnection(Role.SERVER)
        try:
            while data := await reader.read(65536):
                connection.receive_data(data)
                for event in connection.events_received():
                    self.events.append(event)
                    if isinstance(event, m.Command):
                        self._answer(connection, event)
                writer.write(connection.data_to_send())
                await writer.drain()
        except ProtocolError as exc:
            self.errors.append(str(exc))
        except ConnectionError:
            pass
        finally:
            self.closed_sessions += 1
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, connection: RtmpConnection, command: m.Command) -> None:
        if command.name == "connect":
            connection.send_window_ack_size(5_000_000)
            connection.send_set_peer_bandwidth(5_000_000, m.LIMIT_DYNAMIC)
            connection.send_set_chunk_size(4096)
            connection.send_command(
                "_result",
                command.transaction_id,
                {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0},
                {"level": "status", "code": "NetConnection.Connect.Success", "description": "Connection succeeded.",
                 "objectEncoding": 0.0},
            )  # fmt: skip
        elif command.name == "createStream":
            connection.send_command("_result", command.transaction_id, None, 1.0)
        elif command.name == "publish":
            name = command.arguments[0] if command.arguments else ""
            if name in self.reject_names:
                info = {"level": "error", "code": "NetStream.Publish.BadName", "description": "Already publishing"}
            else:
                connection.send_user_control(m.STREAM_BEGIN, command.stream_id)
                info = {"level": "status", "code": "NetStream.Publish.Start", "description": "Start publishing"}
            connection.send_command("onStatus", 0, None, info, stream_id=command.stream_id)


@contextlib.asynccontextmanager
async def mini_ingest(reject_names: set[str] | None = None) -> AsyncIterator[MiniIngest]:
    ingest = MiniIngest(reject_names=reject_names or set())
    server = await asyncio.start_server(ingest.handle, "127.0.0.1", 0)
    ingest.port = server.sockets[0].getsockname()[1]
    try:
        yield ingest
    finally:
        server.close()
        await server.wait_closed()
