"""Who may publish to the relay (relay.publish_key, required beyond loopback), and RTMPS toward the ingest:
verified against a test CA behind a real TLS front end (nginx stream + nginx-rtmp); a certificate from
the wrong CA is refused with a clear error."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.redact import redact
from agent.rtmp.client import RtmpPublisher
from agent.rtmp.errors import IngestRejected
from tests.agent.helpers import make_settings
from tests.agent.relay.failover_peers import decode_errors, ffmpeg_publishing, relay_with_backups
from tests.agent.relay.helpers import until
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available
from tests.peers.tls_front import CertificateAuthority, TlsFront, make_test_ca, tls_front, tls_front_available


def test_listening_beyond_loopback_requires_a_publish_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_settings(tmp_path, relay__listen="0.0.0.0:1935")
    assert "relay.publish_key" in str(caught.value) and "0.0.0.0:1935" in str(caught.value)
    settings = make_settings(tmp_path, relay__listen="0.0.0.0:1935", relay__publish_key="s3cret-publish")
    assert settings.relay.publish_key is not None
    assert "s3cret-publish" not in redact("publishing with s3cret-publish")
    assert make_settings(tmp_path).relay.listen == "127.0.0.1:1935"  # loopback by default, no key needed


def test_a_ca_file_that_is_not_a_certificate_is_a_clear_config_error(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(ConfigError) as caught:
        make_settings(tmp_path, relay__ca_file=str(bogus))
    assert "ca_file" in str(caught.value) and "PEM" in str(caught.value)
    with pytest.raises(ConfigError):
        make_settings(tmp_path, relay__ca_file=str(tmp_path / "missing.pem"))


async def test_a_publisher_with_another_key_is_refused_with_bad_name() -> None:
    async with relay_with_backups(["rtmp://127.0.0.1:9/live/unused"], publish_key="right-key") as relay:
        with pytest.raises(IngestRejected) as refused:
            async with RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/wrong-key", timeout_s=5):
                pass
        assert "NetStream.Publish.BadName" in str(refused.value)
        assert relay.ingress.publishers_refused_total == 1 and not relay.ingress.publishing
        async with RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/right-key?obs=1", timeout_s=5) as encoder:
            assert encoder.publishing
        assert relay.ingress.publishes_total == 1


# ------------------------------------------------------------------------------------------------ RTMPS


@pytest.fixture
def rtmps_ingest(tmp_path: Path) -> Iterator[tuple[NginxRtmp, TlsFront, CertificateAuthority]]:
    for available, reason in (nginx_rtmp_available(), tls_front_available()):
        if not available:
            pytest.skip(reason)
    (tmp_path / "rec").mkdir()
    ca = make_test_ca(tmp_path / "ca")
    with nginx_rtmp(record_dir=tmp_path / "rec") as ingest, tls_front(ingest.port, ca) as front:
        yield ingest, front, ca


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt install ffmpeg)")
async def test_rtmps_to_an_ingest_whose_certificate_the_ca_file_vouches_for(
    rtmps_ingest: tuple[NginxRtmp, TlsFront, CertificateAuthority], tmp_path: Path
) -> None:
    _, front, ca = rtmps_ingest
    async with (
        relay_with_backups([front.url(key="tls")], ca_file=str(ca.ca_cert)) as relay,
        ffmpeg_publishing(f"rtmp://127.0.0.1:{relay.port}/live/k", 3) as ffmpeg,
    ):
        destination = relay.destinations[0]
        await until(lambda: destination.state == "live", 10, "the TLS connection")
        assert destination.publisher is not None and destination.publisher.url.tls
        assert await ffmpeg.process.wait() == 0
        await until(lambda: destination.state == "idle", 15, "the relay to finish")
    assert destination.connects_total == 1 and destination.frames_out_total > 80
    assert decode_errors(tmp_path / "rec" / "tls.flv") == ""


@pytest.mark.integration
@pytest.mark.parametrize("trust", ["system CAs only", "another CA"])
async def test_a_certificate_from_the_wrong_ca_is_refused_with_a_clear_error(
    rtmps_ingest: tuple[NginxRtmp, TlsFront, CertificateAuthority], tmp_path: Path, trust: str
) -> None:
    _, front, _ = rtmps_ingest
    settings: dict[str, object] = {}
    if trust == "another CA":
        settings["ca_file"] = str(make_test_ca(tmp_path / "other", name="someone else's CA").ca_cert)
    async with relay_with_backups([front.url(key="tls-secret")], **settings) as relay:
        encoder = RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/k", timeout_s=5)
        async with encoder:
            await encoder.send_video(0, b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f\xff")
            destination = relay.destinations[0]
            await until(lambda: destination.last_error is not None, 10, "the TLS refusal")
            error = destination.last_error
            assert encoder.publishing  # the encoder is not bothered
    assert destination.connects_total == 0
    assert error is not None and "certificate" in error and "could not be verified" in error, error
    assert "tls-secret" not in error
