"""The read API's `since` and `until` are what its document declares, an RFC 3339 `date-time`; both stores.

pydantic alone also takes Unix seconds (`-2.225073858507e-311`, which Schemathesis generated), dates without a
time and times without a zone; the collector read the last as its own local time, so a reader elsewhere got
another hour's rollups. Each of those is a 422 now, naming the parameter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from tests.collector.helpers import T0, RunningCollector, running_collector, tick

pytestmark = pytest.mark.integration

NOT_RFC3339 = [
    "-2.225073858507e-311",  # Schemathesis' find: Unix seconds in exponent notation, read as 1970
    "1.5e3",
    "0.5",
    "2026-11-30",  # a date, without a time or a zone
    "2026-11-30T12:00:00",  # no zone: the collector's own zone, not the reader's
    "2026-11-30 12:00:00Z",
    "2026-11-30T12:00Z",
    "2026-11-30T12:00:00+0100",
    "2026-11-30T12:00:00,5Z",
]


@pytest.fixture
async def collector(database_url: str) -> AsyncIterator[RunningCollector]:
    async with running_collector(database_url) as running:
        yield running


@pytest.mark.parametrize("value", NOT_RFC3339)
async def test_a_time_that_is_not_an_rfc3339_date_time_is_a_422_naming_the_parameter(
    collector: RunningCollector, value: str
) -> None:
    async with collector.reader() as http:
        for path in ("/api/v1/agents/agent-a/minutes", "/api/v1/sessions"):
            for parameter in ("since", "until"):
                response = await http.get(path, params={parameter: value})
                assert response.status_code == 422, (path, parameter, response.text)
                assert response.json()["error"] == "bad request"
                assert f"query.{parameter}:" in response.json()["detail"], response.text


async def test_every_rfc3339_spelling_of_an_instant_reads_the_same_minutes(collector: RunningCollector) -> None:
    await collector.ship([tick(seq) for seq in range(1, 121)])  # 12:00:01..12:02:00 UTC
    spellings = [
        ("2026-11-30T12:01:00Z", "2026-11-30T12:02:00Z"),
        ("2026-11-30t12:01:00z", "2026-11-30t12:02:00z"),
        ("2026-11-30T13:01:00+01:00", "2026-11-30T07:02:00-05:00"),
        ("2026-11-30T12:01:00.000000000Z", "2026-11-30T12:02:00.5-00:00"),
    ]
    async with collector.reader() as http:
        for since, until in spellings:
            response = await http.get("/api/v1/agents/agent-a/minutes", params={"since": since, "until": until})
            assert response.status_code == 200, (since, until, response.text)
            minutes = [datetime.fromisoformat(m["minute"]) for m in response.json()]
            assert minutes == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)], (since, until)


@pytest.mark.parametrize("until", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "0001-01-01T23:59:00-23:59"])
async def test_an_until_in_the_first_day_of_year_one_reads_no_minutes_rather_than_failing(
    collector: RunningCollector, until: str
) -> None:
    """Valid date-times with no whole day before them, where the default `since` (a day earlier) cannot be."""
    async with collector.reader() as http:
        response = await http.get("/api/v1/agents/agent-a/minutes", params={"until": until})
    assert response.status_code == 200, response.text
    assert response.json() == []
