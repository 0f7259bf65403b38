"""A real OBS Studio (29, Debian's obs-studio) under Xvfb, as a test peer: its own HOME and generated config.

`obs_studio(rtmp_url)` writes a profile (simple output, x264 CBR at the given bitrate, a keyframe every
`keyint_s`, automatic reconnect), service.json pointing at `rtmp_url`, a scene collection ("Main" plays a
generated test video in a loop, "BRB" is a plain colour) and the obs-websocket settings (port, password)
into a temporary HOME, starts Xvfb and OBS, waits for the websocket port, and always stops both and
removes the folder, even when the test fails. What OBS needs to run headless: /work/shared/obs-headless.md
(copied into the comments below where it matters). The `start_obs` fixture (tests/conftest.py) wraps it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.errors import StreamHealthError
from agent.obs.client import ObsClient
from tests.peers.wait import free_port, port_open, wait_until

PROFILE = "streamhealth"
COLLECTION = "streamhealth"
# OBS encodes its version as (major << 24) | (minor << 16) | patch; one at least the installed version's
# keeps the "what's new" dialog away.
LAST_VERSION = (31 << 24) | (0 << 16) | 0
_TEST_VIDEOS: dict[tuple[int, int], Path] = {}


def obs_available() -> tuple[bool, str]:
    for tool, package in (("obs", "obs-studio"), ("Xvfb", "xvfb"), ("ffmpeg", "ffmpeg")):
        if shutil.which(tool) is None:
            return False, f"needs {tool} (apt install {package})"
    return True, ""


@dataclass
class ObsStudio:
    home: Path
    websocket_port: int
    password: str
    process: subprocess.Popen[bytes]
    display: str
    xvfb: subprocess.Popen[bytes]

    @property
    def websocket_url(self) -> str:
        return f"ws://127.0.0.1:{self.websocket_port}"

    @property
    def log_tail(self) -> str:
        """The end of OBS's newest log, for failure messages."""
        logs = sorted((self.home / ".config/obs-studio/logs").glob("*.txt"))
        return logs[-1].read_text(errors="replace")[-4000:] if logs else "(no OBS log)"


def test_video(width: int, height: int) -> Path:
    """A 10 s moving test pattern with a tone (so x264 has real work and real bits), made once per session."""
    key = (width, height)
    if key not in _TEST_VIDEOS:
        path = Path(tempfile.gettempdir()) / f"streamhealth-obs-test-{width}x{height}-{os.getpid()}.mkv"
        subprocess.run(
            [
                "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=30:duration=10",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10",
                "-c:v", "libx264", "-preset", "ultrafast", "-qp", "18", "-c:a", "flac", str(path),
            ],
            check=True,
            timeout=120,
        )  # fmt: skip
        _TEST_VIDEOS[key] = path
    return _TEST_VIDEOS[key]


def write_config(
    home: Path,
    *,
    rtmp_url: str,
    stream_key: str,
    websocket_port: int,
    password: str,
    video_kbps: int,
    audio_kbps: int,
    keyint_s: float,
    width: int,
    height: int,
    fps: int,
) -> None:
    root = home / ".config" / "obs-studio"
    profile = root / "basic" / "profiles" / PROFILE
    scenes = root / "basic" / "scenes"
    profile.mkdir(parents=True)
    scenes.mkdir(parents=True)
    (root / "global.ini").write_text(
        f"""[General]
FirstRun=true
LastVersion={LAST_VERSION}
EnableAutoUpdates=false
ConfirmOnExit=false
WarnBeforeStartingStream=false
WarnBeforeStoppingStream=false

[Basic]
Profile={PROFILE}
ProfileDir={PROFILE}
SceneCollection={COLLECTION}
SceneCollectionFile={COLLECTION}

[OBSWebSocket]
FirstLoad=false
ServerEnabled=true
ServerPort={websocket_port}
AuthRequired=true
ServerPassword={password}
AlertsEnabled=false
"""
    )
    (profile / "basic.ini").write_text(
        f"""[General]
Name={PROFILE}

[Output]
Mode=Simple
Reconnect=true
RetryDelay=2
MaxRetries=20
DynamicBitrate=false

[SimpleOutput]
VBitrate={video_kbps}
StreamEncoder=x264
ABitrate={audio_kbps}
Preset=veryfast
UseAdvanced=true
x264Settings=keyint={round(keyint_s * fps)}

[Video]
BaseCX={width}
BaseCY={height}
OutputCX={width}
OutputCY={height}
FPSType=1
FPSInt={fps}

[Audio]
SampleRate=48000
ChannelSetup=Stereo
"""
    )
    (profile / "service.json").write_text(
        json.dumps({"type": "rtmp_custom", "settings": {"server": rtmp_url, "key": stream_key, "use_auth": False}})
    )
    video = test_video(width, height)
    collection = {
        "name": COLLECTION,
        "current_scene": "Main",
        "current_program_scene": "Main",
        "scene_order": [{"name": "Main"}, {"name": "BRB"}],
        "sources": [
            _scene("Main", "Test video"),
            _scene("BRB", "BRB colour"),
            {
                "id": "ffmpeg_source",
                "versioned_id": "ffmpeg_source",
                "name": "Test video",
                "settings": {"is_local_file": True, "local_file": str(video), "looping": True},
            },
            {
                "id": "color_source",
                "versioned_id": "color_source_v3",
                "name": "BRB colour",
                "settings": {"color": 4282664004, "width": width, "height": height},
            },
        ],
        "transitions": [],
        "current_transition": "Cut",
        "transition_duration": 0,
    }
    (scenes / f"{COLLECTION}.json").write_text(json.dumps(collection))


def _scene(name: str, source: str) -> dict[str, object]:
    return {
        "id": "scene",
        "versioned_id": "scene",
        "name": name,
        "settings": {
            "id_counter": 1,
            "items": [{"name": source, "id": 1, "visible": True, "locked": False, "pos": {"x": 0, "y": 0}}],
        },
    }


def _start_xvfb(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Xvfb on a display it picks itself (-displayfd), so parallel tests never collide."""
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=(home / "xvfb.log").open("wb"),
        start_new_session=True,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as reader:
            number = reader.readline().strip().decode()
    except OSError:
        number = ""
    if not number:
        _stop(process, 5)
        raise RuntimeError(f"Xvfb did not start: {(home / 'xvfb.log').read_text(errors='replace')}")
    return process, f":{number}"


def _stop(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


@contextlib.contextmanager
def obs_studio(
    rtmp_url: str,
    stream_key: str = "obs-test-key",
    *,
    video_kbps: int = 2500,
    audio_kbps: int = 160,
    keyint_s: float = 2.0,
    width: int = 640,
    height: int = 360,
    fps: int = 30,
    start_streaming: bool = False,
    start_timeout_s: float = 60.0,
) -> Iterator[ObsStudio]:
    """OBS Studio with obs-websocket listening on 127.0.0.1, configured to stream to `rtmp_url`/`stream_key`."""
    home = Path(tempfile.mkdtemp(prefix="streamhealth-obs-"))
    port, password = free_port(), secrets.token_urlsafe(12)
    xvfb: subprocess.Popen[bytes] | None = None
    obs: subprocess.Popen[bytes] | None = None
    try:
        write_config(
            home,
            rtmp_url=rtmp_url,
            stream_key=stream_key,
            websocket_port=port,
            password=password,
            video_kbps=video_kbps,
            audio_kbps=audio_kbps,
            keyint_s=keyint_s,
            width=width,
            height=height,
            fps=fps,
        )
        xvfb, display = _start_xvfb(home)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "STREAMHEALTH_"))},
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "DISPLAY": display,
            "LIBGL_ALWAYS_SOFTWARE": "1",
            "QT_QPA_PLATFORM": "xcb",
        }
        arguments = ["obs", "--disable-shutdown-check", "--minimize-to-tray", "--multi"]
        obs = subprocess.Popen(
            [*arguments, *(["--startstreaming"] if start_streaming else [])],
            cwd=home,
            env=env,
            stdout=(home / "obs.stdout.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        peer = ObsStudio(home, port, password, obs, display, xvfb)
        try:
            wait_until(
                lambda: obs.poll() is not None or port_open("127.0.0.1", port), start_timeout_s, "OBS's websocket"
            )
        except TimeoutError as exc:
            raise RuntimeError(f"OBS did not open its websocket in {start_timeout_s:g} s: {peer.log_tail}") from exc
        if obs.poll() is not None:
            raise RuntimeError(f"OBS exited with {obs.returncode}: {peer.log_tail}")
        yield peer
    finally:
        if obs is not None:
            _stop(obs, 20)
        if xvfb is not None:
            _stop(xvfb, 5)
        shutil.rmtree(home, ignore_errors=True)


async def connect(peer: ObsStudio, timeout_s: float = 30.0) -> ObsClient:
    """An identified obs-websocket client; retried, because the port listens a moment before OBS answers."""
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        client = ObsClient(peer.websocket_url, peer.password, timeout_s=10)
        try:
            await client.connect()
            return client
        except StreamHealthError:
            await client.close()
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
