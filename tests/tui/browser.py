"""A real browser for tests: Debian's chromium, headless, driven through the DevTools protocol.

The page's terminal (xterm.js inside textual-serve's renderer) draws on a canvas, so its text is read from
xterm's own buffer: a script run before the page's catches the Terminal object textual.js creates and keeps
it on `window.__terminals`. Each `Chromium` has its own profile folder, so two are two browsers (own cookies).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "terminal", {value, writable: true, configurable: true, enumerable: true});
    if (value && value.buffer && value.buffer.active) { (window.__terminals = window.__terminals || []).push(value); }
  },
});
"""

READ_ROWS = """
(() => {
  const terminal = (window.__terminals || [])[0];
  if (!terminal) return null;
  const buffer = terminal.buffer.active, rows = [];
  for (let y = 0; y < terminal.rows; y++) { const line = buffer.getLine(buffer.viewportY + y); rows.push(line ? line.translateToString(true) : ""); }
  return rows.join("\\n");
})()
"""


class Chromium:
    def __init__(self, width: int = 1300, height: int = 900) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="streamhealth-chromium-"))
        self.process = subprocess.Popen(
            ["chromium", *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._ids = itertools.count(1)
        self._socket: Any = None

    async def open(self, url: str, timeout_s: float = 30.0) -> None:
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError("chromium did not start its DevTools endpoint")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with httpx.AsyncClient() as http:
            targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        page = next(target for target in targets if target["type"] == "page")
        self._socket = await websockets.connect(page["webSocketDebuggerUrl"], max_size=64 << 20)
        await self.call("Page.enable")
        await self.call("Page.addScriptToEvaluateOnNewDocument", source=CATCH_TERMINAL)
        await self.call("Page.navigate", url=url)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        await self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self._socket.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def screen_text(self) -> str:
        """The terminal's rows as text ("" before the TUI drew anything)."""
        return await self.evaluate(READ_ROWS) or ""

    async def wait_for_text(self, wanted: str, timeout_s: float = 40.0) -> str:
        deadline = time.monotonic() + timeout_s
        text = ""
        while time.monotonic() < deadline:
            text = await self.screen_text()
            if wanted in text:
                return text
            await asyncio.sleep(0.25)
        raise AssertionError(f"the page never showed {wanted!r}; it shows:\n{text}")

    async def screenshot(self, path: Path) -> None:
        import base64

        shot = await self.call("Page.captureScreenshot", format="png")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
