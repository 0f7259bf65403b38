"""nginx with libnginx-mod-rtmp as a real RTMP ingest, started with its own config on a free port.

Runs in the foreground (`daemon off`) as a child process, optionally inside a test host's namespace,
with its prefix, pid file and logs in a temporary folder; stopped and reaped when the test ends.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.peers.process import listening_process
from tests.peers.wait import free_port

MODULE_CANDIDATES = (
    Path("/usr/lib/nginx/modules/ngx_rtmp_module.so"),
    Path("/usr/lib64/nginx/modules/ngx_rtmp_module.so"),
)


def nginx_rtmp_available() -> tuple[bool, str]:
    if shutil.which("nginx") is None:
        return False, "needs nginx (apt install nginx libnginx-mod-rtmp)"
    if not any(path.exists() for path in MODULE_CANDIDATES):
        return False, "needs the nginx RTMP module (apt install libnginx-mod-rtmp)"
    return True, ""


@dataclass
class NginxRtmp:
    host: str
    port: int
    app: str
    workdir: Path
    process: subprocess.Popen[bytes]

    def url(self, key: str = "test") -> str:
        return f"rtmp://{self.host}:{self.port}/{self.app}/{key}"

    @property
    def error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def nginx_rtmp(
    host: str = "127.0.0.1",
    port: int | None = None,
    app: str = "live",
    netns_exec: list[str] | None = None,
    extra_application_config: str = "",
    record_dir: Path | None = None,
) -> Iterator[NginxRtmp]:
    """An nginx-rtmp ingest accepting publishes to rtmp://host:port/<app>/<any key>; with `record_dir`,
    every stream is also recorded there as `<key>.flv`."""
    record = f"record all; record_path {record_dir}; record_unique off;" if record_dir else "record off;"
    module = next(path for path in MODULE_CANDIDATES if path.exists())
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="streamhealth-nginx-"))
    config = workdir / "nginx.conf"
    config.write_text(
        f"""
load_module {module};
daemon off;
master_process off;
worker_processes 1;
user root;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen {host}:{port};
        chunk_size 4096;
        application {app} {{
            live on;
            {record}
            {extra_application_config}
        }}
    }}
}}
"""
    )
    for folder in ("client_body_temp", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp"):
        (workdir / folder).mkdir()
    command = ["nginx", "-p", str(workdir), "-c", str(config), "-e", str(workdir / "error.log")]
    error_log = workdir / "error.log"
    try:
        with listening_process(
            command,
            host,
            port,
            what="nginx",
            netns_exec=netns_exec,
            diagnostics=lambda: error_log.read_text(errors="replace") if error_log.exists() else "",
        ) as process:
            yield NginxRtmp(host, port, app, workdir, process)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
