"""`streamhealth bandwidth-server`: a small speed-test server a team can host near its ingest.

One ASGI app (Starlette, served by uvicorn) with two sets of endpoints, so both client backends have
a server they control: the LibreSpeed-style ones the http backend uses (`/backend/garbage.php`,
`/backend/empty.php`, `/backend/getIP.php`), and the Speedtest Mini ones speedtest-cli's mini mode
expects (`/` announcing `upload_extension: "php"`, `/speedtest/latency.txt`,
`/speedtest/random<N>x<N>.jpg`, `/speedtest/upload.php` answering `size=<bytes>`). It stores nothing:
uploads are read and dropped, downloads repeat one block of random bytes.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

BLOCK = os.urandom(1024 * 1024)  # incompressible, generated once
MAX_GARBAGE_MB = 1024
NO_CACHE = {"Cache-Control": "no-store, no-cache, must-revalidate, max-age=0", "Pragma": "no-cache"}
_RANDOM_IMAGE = re.compile(r"random(\d{2,4})x(\d{2,4})\.jpg")

MINI_INDEX = """<!DOCTYPE html>
<html><head><title>streamhealth bandwidth-server</title></head>
<body><p>streamhealth bandwidth-server: a Speedtest Mini and LibreSpeed compatible endpoint.</p>
<script>var settings = { upload_extension: "php" };</script></body></html>
"""


async def _repeat_block(total: int) -> AsyncIterator[bytes]:
    view = memoryview(BLOCK)
    while total > 0:
        size = min(total, len(BLOCK))
        yield bytes(view[:size])
        total -= size


async def _drain(request: Request) -> int:
    received = 0
    with contextlib.suppress(ClientDisconnect):  # a client ending its upload early is normal here
        async for chunk in request.stream():
            received += len(chunk)
    return received


async def garbage(request: Request) -> Response:
    try:
        chunks = int(request.query_params.get("ckSize", "4"))
    except ValueError:
        return PlainTextResponse("ckSize must be a whole number of MiB", status_code=400)
    chunks = max(1, min(chunks, MAX_GARBAGE_MB))
    total = chunks * len(BLOCK)
    headers = {**NO_CACHE, "Content-Length": str(total), "Content-Disposition": "attachment; filename=random.dat"}
    return StreamingResponse(_repeat_block(total), media_type="application/octet-stream", headers=headers)


async def empty(request: Request) -> Response:
    await _drain(request)
    return Response(b"", headers={**NO_CACHE, "Connection": "keep-alive"})


async def get_ip(request: Request) -> Response:
    client = request.client.host if request.client else ""
    return PlainTextResponse(client, headers=NO_CACHE)


async def mini_index(request: Request) -> Response:
    return Response(MINI_INDEX, media_type="text/html", headers=NO_CACHE)


async def mini_latency(request: Request) -> Response:
    return PlainTextResponse("test=test", headers=NO_CACHE)


async def mini_random_image(request: Request) -> Response:
    match = _RANDOM_IMAGE.fullmatch(request.path_params["name"])
    if match is None:
        return PlainTextResponse("not found", status_code=404)
    side = min(int(match.group(1)), 4000)
    total = side * side * 2  # about the size of speedtest.net's own random images
    headers = {**NO_CACHE, "Content-Length": str(total)}
    return StreamingResponse(_repeat_block(total), media_type="image/jpeg", headers=headers)


async def mini_upload(request: Request) -> Response:
    received = await _drain(request)
    return PlainTextResponse(f"size={received}", headers=NO_CACHE)


def create_app() -> Starlette:
    methods = ["GET", "POST", "HEAD", "OPTIONS"]
    return Starlette(
        routes=[
            Route("/backend/garbage.php", garbage, methods=["GET"]),
            Route("/backend/empty.php", empty, methods=methods),
            Route("/backend/getIP.php", get_ip, methods=["GET"]),
            Route("/", mini_index, methods=["GET"]),
            Route("/speedtest/", mini_index, methods=["GET"]),
            Route("/speedtest/latency.txt", mini_latency, methods=["GET"]),
            Route("/speedtest/upload.php", mini_upload, methods=["POST", "GET"]),
            Route("/speedtest/{name}", mini_random_image, methods=["GET"]),
        ]
    )
