"""dbt Cloud's job-run API over HTTPS on loopback, for running the example DAGs for real.

dbt Cloud is a service that cannot run here, so this stands in at its HTTP boundary only:
the real provider's hook sends real requests over TLS (its URLs are always https) to the
paths dbt Cloud serves. A triggered run is reported successful at once, and every
trigger is recorded with the token it came with, so a test sees which environment's
connection started which job.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"
RUN_ID = 4242
SUCCESS = 10  # dbt Cloud's run status code for a successful run
TRIGGER = re.compile(r"^/api/v2/accounts/(\d+)/jobs/(\d+)/run/$")
RUN = re.compile(r"^/api/v2/accounts/\d+/runs/\d+/(\?.*)?$")


class DbtCloudApi:
    """The API on a free port; `ca_file` is the certificate clients must trust."""

    def __init__(self, folder: Path) -> None:
        self.ca_file, key_file = _self_signed_certificate(folder)
        self.triggered: list[tuple[str, str, str]] = []  # (account, job, Authorization)
        self._server = ThreadingHTTPServer((LOOPBACK, 0), self._handler())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.host = f"{LOOPBACK}:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not (found := TRIGGER.match(self.path)):
                    return self._answer(404, None)
                api.triggered.append((found[1], found[2], self.headers["Authorization"]))
                return self._answer(200, {"id": RUN_ID, "status": 1, "href": self.path})

            def do_GET(self) -> None:
                if not RUN.match(self.path):
                    return self._answer(404, None)
                return self._answer(200, {"id": RUN_ID, "status": SUCCESS, "href": self.path})

            def _answer(self, code: int, data: dict | None) -> None:
                body = json.dumps({"data": data, "status": {"code": code}}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    ca_file, key_file = folder / "dbt-cloud-ca.pem", folder / "dbt-cloud-key.pem"
    ca_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, key_file
