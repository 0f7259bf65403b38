"""The drop policy's promise, as a property: every picture the ingest gets has every picture it references
sent before it, on the same connection.

Hypothesis generates GOP structures as encoders make them (B-frames reordered behind their anchors, a
B-pyramid's reference B, several reference frames, open GOPs whose leading B-frames reference the GOP
before) as real H.264 FLV bodies: NAL units with their nal_ref_idc and type, composition offsets for the
reordering. They go through the classifier and the queue the way destination.py drives them (straight out
when nothing is queued and no drop is under way, else `push`; the link sends a few frames at a time; the
connection is sometimes lost and resumed with the GOP sent again), with small limits so that every drop
path runs. References are the encoder's: B-frames reference the anchors around them, P frames earlier
references of the GOP, leading pictures the last anchor before their keyframe; and in H.264 every picture
needs the reference picture decoded just before it (frame_num, the decoder's reference list).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import event, given, settings
from hypothesis import strategies as st

from agent.relay.frames import PICTURE_KINDS, Frame, FrameClassifier, FrameKind
from agent.relay.queue import MediaQueue, QueueLimits
from agent.rtmp import messages as m

FRAME_MS = 33


@dataclass
class Picture:
    pts: int  # display index
    reference: bool
    key: bool = False
    open_key: bool = False
    refs: set[int] = field(default_factory=set)  # display indexes of the pictures it references


def nal_body(picture: Picture, dts: int) -> bytes:
    """An FLV AVC video body: frame type, AVC NALU packet, composition offset, one slice NAL unit."""
    nal_type = 5 if picture.key and not picture.open_key else 1
    ref_idc = 3 if picture.key else 2 if picture.reference else 0
    nal = bytes([ref_idc << 5 | nal_type, 0x88, 0x84])
    cts = (picture.pts - dts) * FRAME_MS
    header = bytes([(1 if picture.key else 2) << 4 | 7, 1]) + (cts & 0xFFFFFF).to_bytes(3, "big")
    return header + len(nal).to_bytes(4, "big") + nal + bytes(picture.pts % 7 * 200)


@st.composite
def gop_stream(draw: st.DrawFn) -> list[tuple[int, Picture]]:
    """(dts index, picture) in decoding order: several GOPs of mini-GOPs (B-frames, then their anchor)."""
    b_frames = draw(st.integers(0, 3))
    pyramid = b_frames >= 2 and draw(st.booleans())
    refs_kept = draw(st.integers(1, 4))  # reference frames a P may use
    decoded: list[Picture] = []
    pts = 0
    anchor: Picture | None = None  # the last anchor (key or P) in decoding order
    for gop in range(draw(st.integers(1, 5))):
        open_key = gop > 0 and b_frames > 0 and draw(st.booleans())
        gop_refs: list[Picture] = []
        for group in range(draw(st.integers(1, 6))):
            count = b_frames if (group > 0 or open_key) else 0
            anchor_pts = pts + count
            if group == 0:
                new_anchor = Picture(anchor_pts, True, key=True, open_key=open_key)
            else:
                chosen = draw(st.sets(st.sampled_from([p.pts for p in gop_refs[-refs_kept:]]), min_size=1))
                new_anchor = Picture(anchor_pts, True, refs=chosen)
            decoded.append(new_anchor)
            previous_anchor = anchor
            anchor = new_anchor
            bs = [Picture(pts + i, False) for i in range(count)]
            if pyramid and bs:
                middle = bs.pop(len(bs) // 2)
                middle.reference = True
                bs.insert(0, middle)  # decoded first, referenced by the other B-frames
            for b in bs:
                b.refs = {new_anchor.pts} | ({previous_anchor.pts} if previous_anchor else set())
                if pyramid and b is not bs[0]:
                    b.refs.add(bs[0].pts)
                decoded.append(b)
            gop_refs.append(new_anchor)
            if group > 0:  # a keyframe's leading pictures are never referenced by the pictures after them
                gop_refs.extend(b for b in bs if b.reference)
            pts = anchor_pts + 1
    # Implicit H.264 references: each picture needs the reference picture decoded before it in its GOP.
    # Leading pictures are outside that chain: a recovery point promises the pictures shown after it decode
    # without them.
    last_reference: Picture | None = None
    key: Picture | None = None
    for picture in decoded:
        if picture.key:
            key = picture
            if not picture.open_key:
                last_reference = None
        leading = key is not None and key.open_key and picture.pts < key.pts
        if last_reference is not None and not picture.key:
            picture.refs.add(last_reference.pts)
        if (picture.reference or picture.key) and not leading:
            last_reference = picture
    return list(enumerate(decoded))


@dataclass
class Session:
    """What one ingest connection received, in order."""

    pictures: list[int] = field(default_factory=list)  # display indexes


@settings(max_examples=400, deadline=None)
@given(
    gop_stream(),
    st.lists(st.tuples(st.sampled_from([0, 0, 1, 1, 2, 3]), st.booleans(), st.integers(0, 30)), min_size=1),
    st.integers(30, 400),
    st.integers(0, 300),
    st.integers(200, 3000),
    st.integers(2_000, 60_000),
)
def test_every_picture_sent_has_every_picture_it_references_sent_before_it(
    stream: list[tuple[int, Picture]],
    link: list[tuple[int, bool, int]],
    disposable_ms: int,
    extra_inter_ms: int,
    max_ms: int,
    max_bytes: int,
) -> None:
    limits = QueueLimits(disposable_ms, disposable_ms + extra_inter_ms, max(max_ms, disposable_ms + extra_inter_ms),
                         max_bytes)  # fmt: skip
    classifier = FrameClassifier()
    queue = MediaQueue(limits)
    by_pts = {picture.pts: picture for _, picture in stream}
    frame_pts: dict[int, int] = {}  # id(frame) -> display index
    sessions = [Session()]
    gop: list[Frame] = []  # what destination.py keeps to send again after a lost connection
    kinds_seen: set[FrameKind] = set()

    def send(frame: Frame) -> None:
        nonlocal gop
        if frame.kind in PICTURE_KINDS:
            sessions[-1].pictures.append(frame_pts[id(frame)])
            gop = [frame] if frame.kind is FrameKind.VIDEO_KEY else [*gop, frame] if gop else []

    for index, (dts, picture) in enumerate(stream):
        body = nal_body(picture, dts)
        kind, codec = classifier.classify(m.VIDEO, body, dts * FRAME_MS)
        frame = Frame(m.VIDEO, dts * FRAME_MS, body, kind, codec)
        kinds_seen.add(kind)
        frame_pts[id(frame)] = picture.pts
        sends, link_free, connection_event = link[index % len(link)]
        if connection_event == 0:  # the connection is lost: the next one gets the GOP again, from its keyframe
            queue.holding = True
            queue.requeue_front(gop)
            gop = []
            queue.drop_until_keyframe()
            sessions.append(Session())
        elif connection_event == 1:
            queue.holding = False
        for _ in range(sends):
            head = queue.pop()
            if head is not None:
                send(head)
        if link_free and not queue and not queue.dropping:
            send(frame)
        else:
            queue.push(frame)
    for head in iter(queue.pop, None):
        send(head)

    for reason in queue.dropped:
        event(f"dropped: {reason}")
    if any(kind is FrameKind.VIDEO_LEADING for kind in kinds_seen) and queue.dropped:
        event("leading pictures and drops")
    for session in sessions:
        seen: set[int] = set()
        for pts in session.pictures:
            picture = by_pts[pts]
            missing = picture.refs - seen
            assert not missing, f"picture {pts} sent without {sorted(missing)} (sent: {session.pictures})"
            seen.add(pts)
        if session.pictures:
            assert by_pts[session.pictures[0]].key, "a connection must start at a keyframe"
