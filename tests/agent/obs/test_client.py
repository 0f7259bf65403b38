"""The asyncio client against a loopback obs-websocket server replaying the recorded OBS 29 session."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ProtocolError, SourceUnavailable
from agent.obs.client import ObsClient
from agent.obs.protocol import ObsAuthenticationFailed, ObsClosed, ObsKicked, ObsRequestFailed
from agent.sources.obs import read_encoder_settings
from tests.agent.obs.conftest import recorded_response
from tests.peers.obs_websocket import FIXTURE_PASSWORD, RecordedObs, recorded_obs
from tests.peers.wait import free_port


@pytest.fixture
async def obs(obs_session_path: Path) -> AsyncIterator[RecordedObs]:
    async with recorded_obs(obs_session_path) as server:
        yield server


async def _connected(obs: RecordedObs, password: str = FIXTURE_PASSWORD) -> ObsClient:
    client = ObsClient(obs.url, password, timeout_s=3, event_subscriptions=64)
    await client.connect()
    return client


async def test_client_identifies_with_the_recorded_authentication_string(
    obs: RecordedObs, obs_recording: list[dict[str, Any]]
) -> None:
    client = await _connected(obs)
    try:
        recorded = next(line["msg"] for line in obs_recording if line["dir"] == "send" and line["msg"]["op"] == 1)
        assert obs.identifies == [recorded]
        assert client.protocol.identified
    finally:
        await client.close()


async def test_client_returns_the_recorded_stats(obs: RecordedObs, obs_recording: list[dict[str, Any]]) -> None:
    client = await _connected(obs)
    try:
        stats, status = await asyncio.gather(client.request("GetStats"), client.request("GetStreamStatus"))
        assert stats == recorded_response(obs_recording, "r2")["responseData"]
        assert status == recorded_response(obs_recording, "r3")["responseData"]
    finally:
        await client.close()


async def test_wrong_password_is_an_authentication_failure_naming_the_setting(obs: RecordedObs) -> None:
    client = ObsClient(obs.url, "not-the-password", timeout_s=3)
    with pytest.raises(ObsAuthenticationFailed, match=r"authentication failed.*check sources\.obs\.password"):
        await client.connect()
    assert obs.connections == 1


async def test_failing_request_raises_its_status_and_the_session_goes_on(obs: RecordedObs) -> None:
    client = await _connected(obs)
    try:
        with pytest.raises(ObsRequestFailed) as failure:
            await client.request("NoSuchRequest")
        assert failure.value.code == 204 and "Your request type is not valid." in str(failure.value)
        assert "outputActive" in await client.request("GetStreamStatus")
    finally:
        await client.close()


async def test_obs_closing_mid_session_fails_the_waiting_request_and_events(obs: RecordedObs) -> None:
    obs.close_after_requests = 1
    client = await _connected(obs)
    try:
        await client.request("GetStats")  # answered, then OBS goes away without a close frame
        with pytest.raises(ObsClosed, match="OBS closed the connection"):
            await client.request("GetStats")
        with pytest.raises(ObsClosed):
            await client.next_event(1)
        assert not client.connected
    finally:
        await client.close()


async def test_kick_from_obs_settings_is_reported_as_kicked(obs: RecordedObs) -> None:
    client = await _connected(obs)
    try:
        await obs.close_all(4011, "kicked")
        with pytest.raises(ObsKicked, match="not reconnecting until asked"):
            await client.next_event(3)
    finally:
        await client.close()


@pytest.mark.parametrize(
    "garbage",
    ["{not json", b"\x89PNG binary", json.dumps({"op": 6, "d": {"requestType": "GetStats", "requestId": "x"}})],
)
async def test_garbage_from_obs_drops_the_connection_with_a_protocol_error(
    obs: RecordedObs, garbage: str | bytes
) -> None:
    obs.garbage_after_identified = garbage
    client = await _connected(obs)
    try:
        with pytest.raises(ProtocolError, match="dropped the connection"):
            await client.next_event(3)
        with pytest.raises(ProtocolError):
            await client.request("GetStats")
    finally:
        await client.close()


async def test_stream_events_arrive_after_the_request_that_caused_them(obs: RecordedObs) -> None:
    client = await _connected(obs)
    try:
        await client.request("StartStream")
        states = []
        while len(states) < 2:
            event = await client.next_event(3)
            assert event is not None
            states.append(event.data["outputState"])
        assert states == ["OBS_WEBSOCKET_OUTPUT_STARTING", "OBS_WEBSOCKET_OUTPUT_STARTED"]
    finally:
        await client.close()


async def test_nothing_listening_is_source_unavailable_saying_to_start_obs() -> None:
    client = ObsClient(f"ws://127.0.0.1:{free_port()}", None, timeout_s=2)
    with pytest.raises(SourceUnavailable, match=r"nothing answers.*start OBS"):
        await client.connect()


def _parameter(value: str) -> dict[str, Any]:
    return {
        "requestType": "GetProfileParameter",
        "requestStatus": {"code": 100, "result": True},
        "responseData": {"parameterValue": value, "defaultParameterValue": None},
    }


async def test_stream_configuration_in_simple_mode_is_read_from_the_recorded_profile(obs: RecordedObs) -> None:
    client = await _connected(obs)
    try:
        settings = await read_encoder_settings(client)
    finally:
        await client.close()
    assert (settings.width, settings.height, settings.fps) == (1280, 720, 30.0)
    assert settings.video_bitrate_kbps == 2500 and settings.output_mode == "Simple"
    assert settings.keyframe_interval_s == 2.0
    assert settings.server == "rtmp://127.0.0.1:1936/live" and settings.service == "rtmp_custom"
    assert "obs" not in settings.model_dump_json().replace('"service":"rtmp_custom"', "")


async def test_stream_configuration_in_advanced_mode_reads_the_audio_track_and_encoder(obs: RecordedObs) -> None:
    obs.profile_parameters[("Output", "Mode")] = _parameter("Advanced")
    obs.profile_parameters[("AdvOut", "TrackIndex")] = _parameter("2")
    obs.profile_parameters[("AdvOut", "Track2Bitrate")] = _parameter("160")
    obs.profile_parameters[("AdvOut", "Encoder")] = _parameter("obs_x264")
    client = await _connected(obs)
    try:
        settings = await read_encoder_settings(client)
    finally:
        await client.close()
    assert settings.output_mode == "Advanced" and settings.audio_bitrate_kbps == 160
    assert settings.video_encoder == "obs_x264"
    assert settings.video_bitrate_kbps is None and settings.keyframe_interval_s is None  # not exposed by OBS
