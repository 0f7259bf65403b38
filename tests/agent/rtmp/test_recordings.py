"""Real traffic recorded from OBS 29 and ffmpeg 5.1 publishing to nginx-rtmp, both directions, through the
handshake and chunk reader: the command sequence, metadata, media and nginx's answers come out as recorded,
however the bytes are cut, and damaged recordings only ever raise ProtocolError."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.errors import ProtocolError
from agent.rtmp import flv
from agent.rtmp import messages as m
from agent.rtmp.connection import Role, RtmpConnection
from tests.agent.rtmp.conftest import RECORDINGS, parse_direction, read_recording

EXPECTED_METADATA = {
    "obs-29.0.2": {
        "width": 1280.0,
        "height": 720.0,
        "framerate": 30.0,
        "videodatarate": 2500.0,
        "audiodatarate": 128.0,
    },
    "ffmpeg-5.1": {"width": 1280.0, "height": 720.0, "framerate": 30.0, "audiosamplerate": 48000.0, "stereo": False},
}
EXPECTED_FLASH_VERSION = {"obs-29.0.2": "FMLE/3.0 (compatible; FMSc/1.0)", "ffmpeg-5.1": "FMLE/3.0 (compatible; Lavf59"}
EXPECTED_AUDIO_CHANNELS = {"obs-29.0.2": 2, "ffmpeg-5.1": 1}


def _commands(events: list[m.Event]) -> list[m.Command]:
    return [event for event in events if isinstance(event, m.Command)]


def test_publisher_sends_connect_then_release_fcpublish_createstream_publish(
    fixtures_dir: Path, recording: str
) -> None:
    events = parse_direction([read_recording(fixtures_dir, recording, "c2s")], "c2s")
    commands = _commands(events)
    assert [command.name for command in commands] == [
        "connect",
        "releaseStream",
        "FCPublish",
        "createStream",
        "publish",
    ]
    connect = commands[0]
    assert connect.transaction_id == 1.0
    assert connect.command_object["app"] == "live"
    assert connect.command_object["tcUrl"] == "rtmp://127.0.0.1:1935/live"
    assert connect.command_object["type"] == "nonprivate"
    assert connect.command_object["flashVer"].startswith(EXPECTED_FLASH_VERSION[recording])
    assert commands[1].arguments == ("fixture",) and commands[2].arguments == ("fixture",)
    publish = commands[-1]
    assert publish.arguments == ("fixture", "live") and publish.stream_id == 1
    assert any(isinstance(event, m.SetChunkSize) and event.chunk_size == 4096 for event in events)


def test_metadata_carries_the_encoder_settings(fixtures_dir: Path, recording: str) -> None:
    events = parse_direction([read_recording(fixtures_dir, recording, "c2s")], "c2s")
    (data,) = [event for event in events if isinstance(event, m.DataMessage)]
    assert data.values[0] == "@setDataFrame"
    metadata = data.metadata
    assert metadata is not None
    assert {key: metadata[key] for key in EXPECTED_METADATA[recording]} == EXPECTED_METADATA[recording]
    assert metadata["videocodecid"] == 7.0 and metadata["audiocodecid"] == 10.0


def test_media_starts_with_sequence_headers_then_a_keyframe(fixtures_dir: Path, recording: str) -> None:
    events = parse_direction([read_recording(fixtures_dir, recording, "c2s")], "c2s")
    video = [event for event in events if isinstance(event, m.VideoMessage)]
    audio = [event for event in events if isinstance(event, m.AudioMessage)]
    assert flv.is_avc_sequence_header(video[0].payload)
    config = flv.parse_avc_decoder_configuration(video[0].payload[5:])
    assert config.profile_idc == 100 and config.nal_length_size == 4  # x264 High profile
    assert len(config.sps) == 1 and config.sps[0][0] & 0x1F == 7 and config.pps[0][0] & 0x1F == 8
    assert flv.is_keyframe(video[1].payload)
    assert not any(flv.is_avc_sequence_header(event.payload) for event in video[1:])
    assert flv.is_aac_sequence_header(audio[0].payload)
    channels = (audio[0].payload[3] >> 3) & 0x0F  # AudioSpecificConfig channel configuration
    assert channels == EXPECTED_AUDIO_CHANNELS[recording]
    timestamps = [event.timestamp for event in video[1:]]
    assert timestamps == sorted(timestamps) and 3000 <= timestamps[-1] <= 4500  # ~4 s recorded
    assert len(video) > 90 and len(audio) > 140  # 30 fps video, ~47 AAC frames/s over ~4 s


def test_ffmpeg_keyframes_follow_its_60_frame_gop(fixtures_dir: Path) -> None:
    events = parse_direction([read_recording(fixtures_dir, "ffmpeg-5.1", "c2s")], "c2s")
    keyframes = [e.timestamp for e in events if isinstance(e, m.VideoMessage) and flv.is_keyframe(e.payload)]
    assert len(keyframes) == 2
    assert keyframes[1] - keyframes[0] == pytest.approx(2000, abs=40)


def test_nginx_answers_with_its_window_bandwidth_chunk_size_and_publish_start(
    fixtures_dir: Path, recording: str
) -> None:
    events = parse_direction([read_recording(fixtures_dir, recording, "s2c")], "s2c")
    assert events[:3] == [
        m.WindowAckSize(5_000_000),
        m.SetPeerBandwidth(5_000_000, m.LIMIT_DYNAMIC),
        m.SetChunkSize(4096),
    ]
    connect_result, create_result, status = _commands(events)
    assert connect_result.name == "_result" and connect_result.transaction_id == 1.0
    assert connect_result.status_code == "NetConnection.Connect.Success"
    assert connect_result.command_object["fmsVer"].startswith("FMS/")
    assert create_result.name == "_result" and create_result.transaction_id == 4.0
    assert create_result.arguments == (1.0,)
    assert status.name == "onStatus" and status.stream_id == 1
    assert status.status_code == "NetStream.Publish.Start"


@pytest.mark.parametrize("direction", ["s2c", "c2s"])
def test_every_two_piece_cut_of_the_session_start_yields_identical_events(
    fixtures_dir: Path, recording: str, direction: str
) -> None:
    # The whole server side, and the client side through the commands, metadata and first media.
    data = read_recording(fixtures_dir, recording, direction)[:6000]
    reference = parse_direction([data], direction)
    assert reference
    for cut in range(len(data) + 1):
        assert parse_direction([data[:cut], data[cut:]], direction) == reference, f"cut at byte {cut}"


def test_feeding_a_whole_session_one_byte_at_a_time_yields_identical_events(fixtures_dir: Path, recording: str) -> None:
    data = read_recording(fixtures_dir, recording, "c2s")
    reference = parse_direction([data], "c2s")
    view = memoryview(data)
    assert parse_direction((view[i : i + 1] for i in range(len(data))), "c2s") == reference


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recording=st.sampled_from(RECORDINGS), cuts=st.lists(st.integers(min_value=0, max_value=1_400_000), max_size=40))
def test_random_cuts_anywhere_in_the_session_yield_identical_events(
    fixtures_dir: Path, recording: str, cuts: list[int]
) -> None:
    data = read_recording(fixtures_dir, recording, "c2s")
    positions = sorted({cut % (len(data) + 1) for cut in cuts})
    pieces = [data[start:end] for start, end in zip([0, *positions], [*positions, len(data)], strict=True)]
    assert parse_direction(pieces, "c2s") == parse_direction([data], "c2s")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    recording=st.sampled_from(RECORDINGS),
    direction=st.sampled_from(["c2s", "s2c"]),
    length=st.integers(min_value=0, max_value=20_000),
    mutations=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=6),
)
def test_truncated_and_mutated_recordings_only_ever_raise_protocol_error(
    fixtures_dir: Path, recording: str, direction: str, length: int, mutations: list[tuple[int, int]]
) -> None:
    data = bytearray(read_recording(fixtures_dir, recording, direction)[:length])
    for position, value in mutations:
        if data:
            data[position % len(data)] = value
    connection = RtmpConnection(Role.SERVER if direction == "c2s" else Role.CLIENT, max_message_size=1 << 20)
    try:
        connection.receive_data(bytes(data))
    except ProtocolError:
        return
    for event in connection.events_received():  # what parsed must also be inspectable without surprises
        if isinstance(event, m.VideoMessage) and event.payload:
            flv.video_info(event.payload)
