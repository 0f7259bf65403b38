"""A TLS front end for an RTMP ingest, as platforms run RTMPS: nginx's `stream` module terminating TLS and
proxying to nginx-rtmp, with a test CA and a server certificate made by openssl for 127.0.0.1.

Needs `apt install nginx libnginx-mod-stream` (and openssl). Everything lives in a temporary folder and the
process is always stopped.
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

STREAM_MODULE_CANDIDATES = (
    Path("/usr/lib/nginx/modules/ngx_stream_module.so"),
    Path("/usr/lib64/nginx/modules/ngx_stream_module.so"),
)


def tls_front_available() -> tuple[bool, str]:
    if shutil.which("nginx") is None or shutil.which("openssl") is None:
        return False, "needs nginx and openssl (apt install nginx openssl)"
    if not any(path.exists() for path in STREAM_MODULE_CANDIDATES):
        return False, "needs the nginx stream module (apt install libnginx-mod-stream)"
    return True, ""


@dataclass(frozen=True)
class CertificateAuthority:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_test_ca(folder: Path, name: str = "streamhealth test CA", host_ip: str = "127.0.0.1") -> CertificateAuthority:
    """A CA and a server certificate it signed for `host_ip` (in the subjectAltName)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = folder / "ca.key", folder / "ca.pem"
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.pem"
    ext = folder / "server.ext"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_cert),
             "-days", "2", "-subj", f"/CN={name}")  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={host_ip}")
    ext.write_text(
        f"subjectAltName = IP:{host_ip}\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\n"
    )
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return CertificateAuthority(ca_cert, cert, key)


@dataclass
class TlsFront:
    host: str
    port: int
    process: subprocess.Popen[bytes]

    def url(self, app: str = "live", key: str = "test") -> str:
        return f"rtmps://{self.host}:{self.port}/{app}/{key}"


@contextlib.contextmanager
def tls_front(backend_port: int, ca: CertificateAuthority, host: str = "127.0.0.1") -> Iterator[TlsFront]:
    """TLS on a free port of `host`, proxied to `host:backend_port` (an nginx-rtmp)."""
    module = next(path for path in STREAM_MODULE_CANDIDATES if path.exists())
    port = free_port(host)
    workdir = Path(tempfile.mkdtemp(prefix="streamhealth-tls-"))
    config = workdir / "nginx.conf"
    config.write_text(
        f"""
load_module {module};
daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 64; }}
stream {{
    server {{
        listen {host}:{port} ssl;
        ssl_certificate {ca.server_cert};
        ssl_certificate_key {ca.server_key};
        proxy_pass {host}:{backend_port};
    }}
}}
"""
    )
    error_log = workdir / "error.log"
    try:
        with listening_process(
            ["nginx", "-p", str(workdir), "-c", str(config), "-e", str(error_log)],
            host,
            port,
            what="nginx (TLS front)",
            diagnostics=lambda: error_log.read_text(errors="replace") if error_log.exists() else "",
        ) as process:
            yield TlsFront(host, port, process)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
