"""What may sit below the relay's queue follows the egress rate: a slow link holds a fraction of a second of the
stream there (where no drop can reach it), a fast one is written with the sizes it always had; and a real
connection's socket and transport get the sizes."""

from __future__ import annotations

import asyncio
import socket

import pytest

from agent.relay import below_queue
from agent.relay.below_queue import (
    NOTSENT_LOWAT_MAX_BYTES,
    NOTSENT_LOWAT_MIN_BYTES,
    WRITE_BUFFER_MAX_BYTES,
    WRITE_BUFFER_MIN_BYTES,
    BelowQueueLimits,
    EgressRate,
)

STREAM_BYTES_PER_S = 2_660_000 / 8  # the end-to-end drop tests' stream: 2500 kbit/s video, 160 kbit/s audio


def held_s(limits: BelowQueueLimits, bytes_per_s: float) -> float:
    return (limits.notsent_lowat_bytes + limits.write_buffer_high_bytes) / bytes_per_s


@pytest.mark.parametrize("fraction", [1 / 3, 1 / 2, 1.0])
def test_a_link_at_a_fraction_of_the_stream_holds_at_most_a_quarter_second_below_the_queue(fraction: float) -> None:
    rate = STREAM_BYTES_PER_S * fraction
    limits = BelowQueueLimits.for_rate(rate)
    assert held_s(limits, rate) <= 0.25
    # The fixed sizes before held 1.7 s of it at a third.
    assert held_s(BelowQueueLimits(), STREAM_BYTES_PER_S / 3) > 1.5


@pytest.mark.parametrize("mbps", [50, 200])
def test_a_fast_link_keeps_the_sizes_it_always_had(mbps: int) -> None:
    assert BelowQueueLimits.for_rate(mbps * 1e6 / 8) == BelowQueueLimits(
        NOTSENT_LOWAT_MAX_BYTES, WRITE_BUFFER_MAX_BYTES
    )


def test_a_stalled_link_keeps_the_floors() -> None:
    assert BelowQueueLimits.for_rate(0.0) == BelowQueueLimits(NOTSENT_LOWAT_MIN_BYTES, WRITE_BUFFER_MIN_BYTES)


def test_sizes_change_only_when_they_move_by_more_than_a_tenth() -> None:
    limits = BelowQueueLimits.for_rate(300_000)
    assert limits.close_to(BelowQueueLimits.for_rate(310_000))
    assert not limits.close_to(BelowQueueLimits.for_rate(200_000))


def test_the_rate_is_the_bytes_acknowledged_over_the_last_second() -> None:
    rate = EgressRate(window_s=1.0)
    assert rate.observe(0, 10.0) is None  # one figure is no rate
    assert rate.observe(50_000, 10.5) == pytest.approx(100_000)
    assert rate.observe(100_000, 11.0) == pytest.approx(100_000)
    # The link slows to a third: within a second and a half the rate says so, the old figures gone.
    rate.observe(116_667, 11.5)
    rate.observe(133_333, 12.0)
    assert rate.observe(150_000, 12.5) == pytest.approx(33_333, rel=0.01)


def test_a_count_that_goes_back_starts_the_rate_again() -> None:
    rate = EgressRate(window_s=1.0)
    rate.observe(1_000_000, 1.0)
    rate.observe(1_100_000, 1.5)
    assert rate.observe(10_000, 2.0) is None
    assert rate.observe(60_000, 2.5) == pytest.approx(100_000)


async def test_a_real_connection_gets_the_sizes_on_its_socket_and_transport() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def on_client(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        limits = BelowQueueLimits.for_rate(STREAM_BYTES_PER_S / 3)
        below_queue.apply(writer.transport, writer.get_extra_info("socket"), limits)
        assert writer.transport.get_write_buffer_limits() == (
            limits.write_buffer_high_bytes // 4,
            limits.write_buffer_high_bytes,
        )
        if below_queue.TCP_NOTSENT_LOWAT is not None:
            sock = writer.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, below_queue.TCP_NOTSENT_LOWAT) == limits.notsent_lowat_bytes
    finally:
        writer.close()
        for other in accepted:
            other.close()
        server.close()
        await server.wait_closed()
