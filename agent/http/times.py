"""Times in query parameters, as the OpenAPI documents declare them: RFC 3339 `date-time`, with a zone.

Shared by the agent's and the collector's read routes (one idiom). pydantic alone also takes Unix seconds
(`1.5e3`), a bare date and a time without a zone; a time without a zone is read in the server's own zone
(the collector's stores) or as UTC (the agent), either way perhaps another hour than the reader meant, and
the documents' readers (Schemathesis, generated clients) hold a server to what the document says.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import BeforeValidator

# RFC 3339 section 5.6: date, `T`, time to the second, an optional fraction, and a zone.
RFC3339_DATE_TIME: Final = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)


def _rfc3339_only(value: Any) -> Any:
    """The grammar here; the calendar and the clock are checked by pydantic."""
    if isinstance(value, str) and not RFC3339_DATE_TIME.fullmatch(value):
        raise ValueError("give an RFC 3339 time with its zone, e.g. 2026-11-25T08:00:00Z")
    return value


Rfc3339Time = Annotated[datetime, BeforeValidator(_rfc3339_only)]
