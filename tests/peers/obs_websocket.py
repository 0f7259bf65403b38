"""A loopback obs-websocket v5 server that behaves like OBS 29 by replaying a recorded session.

It speaks the real protocol on a real socket (the `websockets` server): sends the recorded Hello (salt,
challenge), checks the client's Identify authentication string against the password and closes with 4009
when it is wrong (as obs-websocket does), then answers each request with the recorded answer for that
request type, in recorded order (the last one repeats when the recording runs out; GetProfileParameter is
matched by category and name, and an unrecorded parameter gets OBS's null answer). Request types the
recording never saw get OBS's status 204 unless the test gives an answer. Recorded events follow the
request that caused them. Tests can push events, close like OBS quitting, kick (4011) or send garbage.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

FIXTURE_PASSWORD = "s3cret-pass"


def load_recording(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _auth(password: str, salt: str, challenge: str) -> str:
    secret = base64.b64encode(hashlib.sha256((password + salt).encode()).digest()).decode()
    return base64.b64encode(hashlib.sha256((secret + challenge).encode()).digest()).decode()


class RecordedObs:
    def __init__(self, recording: list[dict[str, Any]], password: str | None = FIXTURE_PASSWORD) -> None:
        self.recording = recording
        self.password = password
        self.hello = next(line["msg"] for line in recording if line["dir"] == "recv" and line["msg"]["op"] == 0)
        if password is None:
            self.hello = copy.deepcopy(self.hello)
            self.hello["d"].pop("authentication", None)
        self.answers: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        self.profile_parameters: dict[tuple[str, str], dict[str, Any]] = {}
        self.events_after: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._index_recording()
        self.extra_answers: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        self.identifies: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, Any] | None]] = []
        self.connections = 0
        self.close_after_requests: int | None = None
        self.close_code: int | None = None  # None: drop TCP like a crashed OBS
        self.garbage_after_identified: str | bytes | None = None
        self._live: set[ServerConnection] = set()
        self._server: Server | None = None
        self.port = 0

    def _index_recording(self) -> None:
        sent: dict[str, dict[str, Any]] = {}
        last_answered: str | None = None
        for line in self.recording:
            message = line["msg"]
            if line["dir"] == "send" and message["op"] == 6:
                sent[message["d"]["requestId"]] = message["d"]
            elif line["dir"] == "recv" and message["op"] == 7:
                request = sent[message["d"]["requestId"]]
                kind = request["requestType"]
                if kind == "GetProfileParameter":
                    data = request["requestData"]
                    self.profile_parameters[(data["parameterCategory"], data["parameterName"])] = message["d"]
                else:
                    self.answers[kind].append(message["d"])
                last_answered = kind
            elif line["dir"] == "recv" and message["op"] == 5 and last_answered is not None:
                self.events_after[last_answered].append(message["d"])

    # --- test controls ------------------------------------------------------------------------------

    def answer_next(self, request_type: str, response_data: dict[str, Any], code: int = 100) -> None:
        """Answer the next `request_type` with this instead of the recording."""
        status: dict[str, Any] = {"code": code, "result": code == 100}
        self.extra_answers[request_type].append(
            {"requestType": request_type, "requestStatus": status, "responseData": response_data}
        )

    def replace_stream_key(self, key: str) -> None:
        for answer in self.answers["GetStreamServiceSettings"]:
            answer["responseData"]["streamServiceSettings"]["key"] = key

    async def push_event(self, event_type: str, data: dict[str, Any], intent: int = 64) -> None:
        message = json.dumps({"op": 5, "d": {"eventType": event_type, "eventIntent": intent, "eventData": data}})
        for connection in list(self._live):
            with contextlib.suppress(ConnectionClosed):
                await connection.send(message)

    async def close_all(self, code: int | None = None, reason: str = "") -> None:
        for connection in list(self._live):
            if code is None:
                connection.transport.abort()
            else:
                with contextlib.suppress(ConnectionClosed):
                    await connection.close(code, reason)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    # --- server -------------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            port,
            subprotocols=["obswebsocket.json"],
            compression=None,  # type: ignore[list-item]
        )
        self.port = self._server.sockets[0].getsockname()[1] if port == 0 else port

    async def stop(self) -> None:
        if self._server is not None:
            await self.close_all(None)
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, connection: ServerConnection) -> None:
        self.connections += 1
        self._live.add(connection)
        try:
            await self._session(connection)
        except ConnectionClosed:
            pass
        finally:
            self._live.discard(connection)

    async def _session(self, connection: ServerConnection) -> None:
        await connection.send(json.dumps(self.hello))
        identify = json.loads(await connection.recv())
        self.identifies.append(identify)
        if identify.get("op") != 1:
            await connection.close(4007, "Not identified")
            return
        if self.password is not None:
            auth = self.hello["d"]["authentication"]
            expected = _auth(self.password, auth["salt"], auth["challenge"])
            if identify["d"].get("authentication") != expected:
                await connection.close(4009, "Authentication failed.")
                return
        await connection.send(json.dumps({"op": 2, "d": {"negotiatedRpcVersion": 1}}))
        if self.garbage_after_identified is not None:
            await connection.send(self.garbage_after_identified)
        answered = 0
        async for frame in connection:
            message = json.loads(frame)
            if message.get("op") != 6:
                await connection.close(4005, "Unknown op code")
                return
            request = message["d"]
            self.requests.append((request["requestType"], request.get("requestData")))
            await connection.send(json.dumps({"op": 7, "d": self._answer(request)}))
            for event in self.events_after.get(request["requestType"], []):
                await connection.send(json.dumps({"op": 5, "d": event}))
            answered += 1
            if self.close_after_requests is not None and answered >= self.close_after_requests:
                if self.close_code is None:
                    connection.transport.abort()
                else:
                    await connection.close(self.close_code, "")
                return

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        kind = request["requestType"]
        if self.extra_answers[kind]:
            answer = self.extra_answers[kind].popleft()
        elif kind == "GetProfileParameter":
            data = request.get("requestData") or {}
            key = (data.get("parameterCategory"), data.get("parameterName"))
            answer = self.profile_parameters.get(key) or {  # type: ignore[arg-type]
                "requestType": kind,
                "requestStatus": {"code": 100, "result": True},
                "responseData": {"defaultParameterValue": None, "parameterValue": None},
            }
        elif self.answers.get(kind):
            queue = self.answers[kind]
            answer = queue.popleft() if len(queue) > 1 else queue[0]
        else:
            answer = {
                "requestType": kind,
                "requestStatus": {"code": 204, "comment": "Your request type is not valid.", "result": False},
            }
        answer = copy.deepcopy(answer)
        answer["requestId"] = request["requestId"]
        return answer


@contextlib.asynccontextmanager
async def recorded_obs(recording_path: Path, password: str | None = FIXTURE_PASSWORD) -> AsyncIterator[RecordedObs]:
    server = RecordedObs(load_recording(recording_path), password)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
