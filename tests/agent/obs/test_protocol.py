"""The obs-websocket codec, fed the recorded OBS 29 session line by line (no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.errors import ProtocolError
from agent.obs.protocol import (
    ObsAuthenticationFailed,
    ObsKicked,
    ObsProtocol,
    ObsRequestFailed,
    authentication_string,
    explain_close,
)
from tests.peers.obs_websocket import FIXTURE_PASSWORD


def _first(recording: list[dict[str, Any]], direction: str, op: int) -> dict[str, Any]:
    return next(line["msg"] for line in recording if line["dir"] == direction and line["msg"]["op"] == op)


def test_authentication_string_from_the_recorded_hello_equals_the_recorded_identify(
    obs_recording: list[dict[str, Any]],
) -> None:
    hello = _first(obs_recording, "recv", 0)
    recorded_identify = _first(obs_recording, "send", 1)
    auth = hello["d"]["authentication"]
    assert (
        authentication_string(FIXTURE_PASSWORD, auth["salt"], auth["challenge"])
        == (recorded_identify["d"]["authentication"])
    )
    assert authentication_string("wrong", auth["salt"], auth["challenge"]) != recorded_identify["d"]["authentication"]


def test_protocol_answers_hello_with_identify_carrying_the_recorded_authentication(
    obs_recording: list[dict[str, Any]],
) -> None:
    protocol = ObsProtocol(password=FIXTURE_PASSWORD, event_subscriptions=64)
    protocol.receive_text(json.dumps(_first(obs_recording, "recv", 0)))
    [identify] = [json.loads(text) for text in protocol.data_to_send()]
    assert identify == _first(obs_recording, "send", 1)
    assert protocol.obs_websocket_version == "5.1.0"


def test_replaying_the_recorded_session_matches_every_reply_to_its_request(
    obs_recording: list[dict[str, Any]],
) -> None:
    protocol = ObsProtocol(password=FIXTURE_PASSWORD)
    our_ids: dict[str, str] = {}
    replies = []
    events = []
    for line in obs_recording:
        message = line["msg"]
        if line["dir"] == "send" and message["op"] == 6:
            our_ids[message["d"]["requestId"]] = protocol.request(
                message["d"]["requestType"], message["d"].get("requestData")
            )
        elif line["dir"] == "recv":
            if message["op"] == 7:  # OBS answers our id, not the recorded one
                message = {"op": 7, "d": {**message["d"], "requestId": our_ids[message["d"]["requestId"]]}}
            protocol.receive_text(json.dumps(message))
            replies += protocol.replies_received()
            events += protocol.events_received()
    assert protocol.identified and protocol.negotiated_rpc_version == 1
    assert protocol.pending_request_ids == frozenset()
    assert len(replies) == len(our_ids)
    by_type = {reply.request_type: reply for reply in replies}
    assert by_type["GetVideoSettings"].data == {
        "baseHeight": 720,
        "baseWidth": 1280,
        "fpsDenominator": 1,
        "fpsNumerator": 30,
        "outputHeight": 720,
        "outputWidth": 1280,
    }
    failed = by_type["NoSuchRequest"].error
    assert isinstance(failed, ObsRequestFailed)
    assert failed.code == 204
    assert "UnknownRequestType" in str(failed) and "Your request type is not valid." in str(failed)
    assert [event.data["outputState"] for event in events if event.event_type == "StreamStateChanged"] == [
        "OBS_WEBSOCKET_OUTPUT_STARTING",
        "OBS_WEBSOCKET_OUTPUT_STARTED",
        "OBS_WEBSOCKET_OUTPUT_STOPPING",
        "OBS_WEBSOCKET_OUTPUT_STOPPED",
    ]


def _identified() -> ObsProtocol:
    protocol = ObsProtocol(password=None)
    protocol.receive_text(json.dumps({"op": 0, "d": {"obsWebSocketVersion": "5.1.0", "rpcVersion": 1}}))
    protocol.receive_text(json.dumps({"op": 2, "d": {"negotiatedRpcVersion": 1}}))
    return protocol


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        ("this is not json", "not JSON"),
        (b"\x00\x01binary", "binary"),
        (json.dumps([1, 2, 3]), "shape"),
        (json.dumps({"op": 6, "d": {"requestType": "GetStats", "requestId": "x"}}), "op code 6"),
        (json.dumps({"op": 42, "d": {}}), "op code 42"),
        (json.dumps({"op": 7, "d": {"requestId": "never-sent", "requestStatus": {"result": True}}}), "never sent"),
        (json.dumps({"op": 0, "d": {"rpcVersion": 1}}), "second Hello"),
    ],
)
def test_frames_that_are_not_obs_websocket_raise_protocol_error(frame: str | bytes, why: str) -> None:
    protocol = _identified()
    with pytest.raises(ProtocolError, match=why):
        protocol.receive_text(frame)


def test_request_before_identified_is_refused() -> None:
    with pytest.raises(ProtocolError):
        ObsProtocol().request("GetStats")


def test_events_before_identify_are_a_protocol_error() -> None:
    protocol = ObsProtocol()
    with pytest.raises(ProtocolError, match="before the session was identified"):
        protocol.receive_text(json.dumps({"op": 5, "d": {"eventType": "StreamStateChanged"}}))


def test_hello_asking_for_a_password_when_none_is_set_says_to_set_it(obs_recording: list[dict[str, Any]]) -> None:
    protocol = ObsProtocol(password=None)
    with pytest.raises(ObsAuthenticationFailed, match=r"sources\.obs\.password"):
        protocol.receive_text(json.dumps(_first(obs_recording, "recv", 0)))


def test_late_answer_to_a_forgotten_request_is_ignored_not_fatal() -> None:
    protocol = _identified()
    request_id = protocol.request("GetStats")
    protocol.forget(request_id)
    protocol.receive_text(
        json.dumps(
            {
                "op": 7,
                "d": {
                    "requestId": request_id,
                    "requestType": "GetStats",
                    "requestStatus": {"result": True, "code": 100},
                },
            }
        )
    )
    assert protocol.replies_received() == []


def test_close_codes_become_errors_that_say_what_to_do() -> None:
    auth = explain_close(4009)
    assert isinstance(auth, ObsAuthenticationFailed)
    assert "authentication failed" in str(auth) and "check sources.obs.password" in str(auth)
    kicked = explain_close(4011)
    assert isinstance(kicked, ObsKicked) and "not reconnecting until asked" in str(kicked)
    assert "close code 1001" in str(explain_close(1001, "going away"))
