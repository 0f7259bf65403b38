"""AMF0: round trips for every supported type, known byte layouts, and a parser that only raises ProtocolError."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import ProtocolError
from agent.rtmp import amf0

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
scalars = st.one_of(
    st.floats(allow_nan=False),
    st.booleans(),
    text,
    st.none(),
    st.just(amf0.UNDEFINED),
    st.builds(amf0.Date, st.floats(allow_nan=False), st.integers(-32768, 32767)),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.dictionaries(text, children, max_size=5),
        st.dictionaries(text, children, max_size=5).map(amf0.EcmaArray),
        st.lists(children, max_size=5),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(values, max_size=4))
def test_decoding_what_was_encoded_gives_back_the_same_values_and_types(items: list[Any]) -> None:
    decoded = amf0.decode_all(amf0.encode(*items))
    assert decoded == items
    for original, back in zip(items, decoded, strict=True):
        assert type(back) is type(original) or (isinstance(original, float) and isinstance(back, float))


def test_connect_command_has_the_byte_layout_real_encoders_send() -> None:
    encoded = amf0.encode("connect", 1.0, {"app": "live"})
    assert encoded == (
        b"\x02\x00\x07connect"
        + b"\x00\x3f\xf0\x00\x00\x00\x00\x00\x00"
        + b"\x03\x00\x03app\x02\x00\x04live\x00\x00\x09"
    )


def test_strings_longer_than_65535_bytes_use_the_long_string_marker() -> None:
    long_text = "x" * 70000
    encoded = amf0.encode(long_text)
    assert encoded[0] == amf0.LONG_STRING
    assert amf0.decode_all(encoded) == [long_text]


def test_ecma_array_and_strict_array_and_date_markers() -> None:
    assert amf0.encode(amf0.EcmaArray({"a": 1.0}))[0] == amf0.ECMA_ARRAY
    assert amf0.encode([1.0, "b"]) == b"\x0a\x00\x00\x00\x02" + amf0.encode(1.0, "b")
    assert amf0.decode_all(b"\x0b" + b"\x42\x77\x48\x76\xe8\x00\x00\x00" + b"\x00\x00") == [amf0.Date(1.6e12, 0)]


def test_ecma_array_count_is_advisory_the_end_marker_ends_it() -> None:
    # librtmp-era encoders write 0 as the count of onMetaData's ECMA array.
    data = b"\x08\x00\x00\x00\x00" + b"\x00\x01a\x00" + b"\x40\x00\x00\x00\x00\x00\x00\x00" + b"\x00\x00\x09"
    assert amf0.decode_all(data) == [{"a": 2.0}]


def test_number_nan_survives_a_round_trip() -> None:
    (value,) = amf0.decode_all(amf0.encode(math.nan))
    assert math.isnan(value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00\x3f\xf0", "truncated"),
        (b"\x02\x00\x09conn", "truncated"),
        (b"\x03\x00\x03app\x02\x00\x04live", "truncated"),
        (b"\x0a\xff\xff\xff\xff", "truncated"),
        (b"\x11\x00", "unsupported"),
        (b"\x09", "object-end"),
        (b"\x0a\x00\x00\x00\x01" * 200, "nested"),
    ],
)
def test_malformed_input_raises_protocol_error_naming_the_problem(data: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        amf0.decode_all(data)


def test_encoding_an_unsupported_python_type_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        amf0.encode(object())


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_protocol_error_only(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        amf0.decode_all(data)


@settings(max_examples=300, deadline=None)
@given(values, st.data())
def test_truncated_or_mutated_encodings_decode_or_raise_protocol_error_only(value: Any, data: st.DataObject) -> None:
    encoded = bytearray(amf0.encode(value))
    cut = data.draw(st.integers(0, len(encoded)))
    mutated = encoded[:cut]
    if mutated:
        index = data.draw(st.integers(0, len(mutated) - 1))
        mutated[index] = data.draw(st.integers(0, 255))
    with contextlib.suppress(ProtocolError):
        amf0.decode_all(bytes(mutated))
