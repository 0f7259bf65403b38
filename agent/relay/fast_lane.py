"""The relay's steady state, made cheap: a live stream's media forwarded the moment it is read, and noted later.

Why: the relay wakes once per frame the encoder sends (about 77 times a second at 30 fps with AAC audio), and
on a virtual machine each wake-up finds the caches and the TLB cold, so every object and function a frame
touches costs microseconds, not nanoseconds. The general path touches many: an event per message, a `Frame`,
its classification, the ingress counters, and per destination the queue check, the ledger of what was sent,
the GOP kept for replay and a latency sample. Here a read of whole media messages is parsed, written to every
destination and flushed; what the relay must learn from those frames (kind and codec, counters, ledger,
replay, latency) is noted in one pass later (`settle`), by the same code the general path uses, about once a
second: the relay's sample, the connection watch, the general path and any loss or end of the stream settle
first, so nothing reads those figures before they are whole.

The lane is taken only when it changes nothing the encoder or the ingest sees: the stream is live and not
waiting for a decision (the relay holds a lane only from the moment it accepts a publish until the stream
ends, and the encoder's link takes the general path while a decision or the stream's end is pending; a
second publish on the same connection arrives as a command, which the general path takes), every destination would write the frame at once (connected, nothing queued, buffer
below its mark), and each message is audio or video on the published stream that is surely not a sequence
header or metadata (`never_cached`: the header cache and the classifier's NAL length size stay current
without settling). Anything else, from the first message that does not qualify, goes down the general path
in order, as if the lane did not exist.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final

from agent.relay.destination import Destination
from agent.relay.frames import Frame, never_cached
from agent.relay.publisher import STREAM_ID, PublisherSession
from agent.rtmp import messages as m
from agent.rtmp.chunks import RawMessage, WholeMessage
from agent.rtmp.client import RtmpPublisher
from agent.rtmp.connection import CSID_AUDIO, CSID_VIDEO

# Settled on the spot beyond this many unsettled frames (about 6 s of a 30 fps stream with audio), should
# nothing that settles run for that long: the backlog's memory stays bounded whatever happens.
MAX_UNSETTLED_FRAMES: Final = 512

# One read's frames forwarded but not yet noted: the messages, when they were read, when they were flushed,
# and where each ends in each destination's byte stream (message by message, destination by destination).
_Unsettled = tuple[list[WholeMessage], float, float, list[int]]


def _raw(whole: list[WholeMessage], start: int) -> list[RawMessage]:
    """Whole messages from `start` on, as the general path takes them."""
    return [
        RawMessage(csid, timestamp, type_id, stream_id, payload)
        for csid, type_id, stream_id, timestamp, payload in whole[start:]
    ]


class FastLane:
    """The fast lane of one live stream (one publishing encoder)."""

    def __init__(
        self,
        session: PublisherSession,
        destinations: Sequence[Destination],
        note_frame: Callable[[Frame], None],
        clock: Callable[[], float] = time.monotonic,
        *,
        timestamp_offset_ms: int = 0,
    ) -> None:
        self.session = session
        # Added to every timestamp (mod 2^32): an encoder that took over a held broadcast (hold.py).
        self._offset_ms = timestamp_offset_ms
        self._connection = session.connection
        self._destinations = tuple(destinations)
        self._note_frame = note_frame  # the relay's own bookkeeping of a frame in (ingress counters)
        self._clock = clock
        self._unsettled: list[_Unsettled] = []
        self._unsettled_frames = 0
        self.answer_due = False  # the last read left the encoder owed an Acknowledgement (in data_to_send)
        self.frames_settled_total = 0  # frames that went through the lane (counted when noted, off the hot path)

    @property
    def unsettled(self) -> int:
        return self._unsettled_frames

    def forward(self, data: memoryview) -> list[RawMessage]:
        """Bytes from the encoder: the whole media messages among them forwarded; the rest returned, from the
        first message the lane does not take, for the general path (`PublisherSession.take_messages`).
        Raises ProtocolError on malformed input, as the general path does.

        Kept to one short function on purpose: each call and attribute a frame touches costs on cold caches."""
        whole, raws, self.answer_due = self._connection.receive_messages(data)
        if not whole:
            return raws
        publishers: list[RtmpPublisher] = []
        for destination in self._destinations:  # a loop, not a comprehension: one function call less
            publisher = destination.direct_publisher()
            if publisher is None:
                return _raw(whole, 0) + raws
            publishers.append(publisher)
        received_at_s = self._clock()
        offset_ms = self._offset_ms
        ends: list[int] = []  # per message, per destination
        for index, message in enumerate(whole):
            _, type_id, stream_id, timestamp_ms, payload = message
            if stream_id != STREAM_ID or not never_cached(type_id, payload):
                raws = _raw(whole, index) + raws
                whole = whole[:index]
                break
            csid = CSID_VIDEO if type_id == m.VIDEO else CSID_AUDIO
            if offset_ms:
                timestamp_ms = (timestamp_ms + offset_ms) & 0xFFFFFFFF
            for publisher in publishers:
                stream_id = publisher.stream_id or STREAM_ID
                ends.append(publisher.connection.forward_media(csid, timestamp_ms, type_id, stream_id, payload))
        for publisher in publishers:
            publisher.flush()
        if whole:
            self._unsettled.append((whole, received_at_s, self._clock(), ends))
            self._unsettled_frames += len(whole)
            if self._unsettled_frames > MAX_UNSETTLED_FRAMES:
                self.settle()
        return raws

    def settle(self) -> None:
        """Note every frame forwarded so far, in order, as the general path would have noted it."""
        unsettled = self._unsettled
        if not unsettled:
            return
        self._unsettled = []
        self.frames_settled_total += self._unsettled_frames
        self._unsettled_frames = 0
        classify = self.session.classifier.classify
        note_frame = self._note_frame
        destinations = self._destinations
        count = len(destinations)
        offset_ms = self._offset_ms
        for messages, received_at_s, sent_at_s, ends in unsettled:
            for index, (_, type_id, _, timestamp_ms, payload) in enumerate(messages):
                kind, codec = classify(type_id, payload, timestamp_ms)  # the encoder's clock, as the general path
                if offset_ms:
                    timestamp_ms = (timestamp_ms + offset_ms) & 0xFFFFFFFF
                frame = Frame(type_id, timestamp_ms, payload, kind, codec, received_at_s)
                note_frame(frame)
                for destination, end_offset in zip(
                    destinations, ends[index * count : (index + 1) * count], strict=True
                ):
                    destination.account_for(frame, end_offset, sent_at_s)
