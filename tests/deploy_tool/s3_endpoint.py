"""A real S3 endpoint over HTTP on loopback: moto's server, with a request log and faults.

Every tool under test (this project's deploy, the AWS CLI in the benchmark) talks to it
through the AWS SDK's standard `AWS_ENDPOINT_URL`, exactly as it would talk to AWS. The
endpoint records each request it serves, and can answer chosen requests with an S3 error
instead of serving them, the way a flaky network or a missing permission would, and
add a latency to every request, the way a bucket in another region would.
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


class _QuietHandler(MotoRequestHandler):
    """moto's handler without werkzeug's line a request: hundreds in a failing test's output
    (the requests are in S3Endpoint.requests)."""

    def log_request(self, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class Request:
    """One request as S3 sees it: `action` is put, get, head, list, delete or other."""

    method: str
    bucket: str
    key: str
    action: str


@dataclass
class Fault:
    method: str
    key_pattern: str
    status: int  # 0: no answer at all for `stall` seconds, then a dropped connection
    code: str
    times: int | None  # None: every matching request
    stall: float = 0.0

    def matches(self, request: Request) -> bool:
        return request.method == self.method and fnmatch.fnmatchcase(request.key, self.key_pattern)


class S3Endpoint:
    """moto's S3 server on 127.0.0.1 and a free port, until `stop()`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.latency = 0.0  # seconds added to every request
        self.most_in_flight = 0  # the most requests served at the same time
        self._in_flight = 0
        self._lock = threading.Lock()
        self._server = make_server(
            "127.0.0.1",
            0,
            self._app(DomainDispatcherApplication(create_backend_app)),
            threaded=True,
            request_handler=_QuietHandler,
        )
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the port: from now on, connections are refused."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def fail(
        self,
        method: str,
        key_pattern: str = "*",
        status: int = 500,
        code: str = "InternalError",
        times: int | None = None,
    ) -> None:
        """Answer `method` requests on keys matching `key_pattern` with an S3 error.

        Status 200 on a multi-object delete: S3's answer that each key was refused.
        """
        self.faults.append(Fault(method, key_pattern, status, code, times))

    def stall(self, method: str, key_pattern: str = "*", seconds: float = 5.0) -> None:
        """Answer nothing to matching requests for `seconds`, as a paused endpoint would."""
        self.faults.append(Fault(method, key_pattern, 0, "", None, seconds))

    @contextmanager
    def enforcing_iam(self) -> Iterator[None]:
        """Check every request against its caller's IAM policies, as AWS does, until exit.

        Only the users and keys created in the endpoint's IAM before this are known.
        """
        self._set_auth("0")  # from the next request on
        try:
            yield
        finally:
            self._set_auth("inf")

    def _set_auth(self, free_requests: str) -> None:
        url = f"{self.url}/moto-api/reset-auth"
        headers = {"Content-Type": "text/plain"}  # not a form: moto reads the raw body
        request = urllib.request.Request(url, free_requests.encode(), headers, method="POST")
        urllib.request.urlopen(request).close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.faults.clear()
            self.latency = 0.0
            self.most_in_flight = 0

    def count(self, actions: Iterable[str] | None = None) -> int:
        """How many requests were served (of the given actions), since the last reset."""
        tally = Counter(request.action for request in self.requests)
        return sum(tally.values()) if actions is None else sum(tally[a] for a in actions)

    def _app(self, moto: Callable[[Environ, StartResponse], Iterable[bytes]]):
        def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            request = _parse(environ)
            with self._lock:
                self.requests.append(request)
                fault = next((f for f in self.faults if f.matches(request)), None)
                if fault and fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                self._in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self._in_flight)
            try:
                time.sleep(self.latency)
                if fault is None:
                    # moto answers with a complete body, so the request ends here.
                    return list(moto(environ, start_response))
            finally:
                with self._lock:
                    self._in_flight -= 1
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            if fault.stall:
                time.sleep(fault.stall)
                raise ConnectionAbortedError("stalled by the test endpoint")
            if fault.status == 200:
                return _refuse_each_key(body, fault.code, start_response)
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault.code}</Code>'
                f"<Message>injected by the test endpoint</Message></Error>"
            ).encode()
            start_response(
                f"{fault.status} {fault.code}",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]

        return app


def _refuse_each_key(request: bytes, code: str, start_response: StartResponse) -> list[bytes]:
    """A DeleteObjects answer that refuses every key, as S3 does when a policy denies them."""
    keys = re.findall(r"<Key>(.*?)</Key>", request.decode())
    errors = "".join(
        f"<Error><Key>{key}</Key><Code>{code}</Code><Message>denied</Message></Error>"
        for key in keys
    )
    body = f'<?xml version="1.0" encoding="UTF-8"?><DeleteResult>{errors}</DeleteResult>'.encode()
    start_response(
        "200 OK", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _parse(environ: Environ) -> Request:
    """Path-style addressing: /bucket/key (the SDK uses it for an IP-address endpoint)."""
    method = environ["REQUEST_METHOD"]
    bucket, _, key = unquote(environ.get("PATH_INFO", "/")).lstrip("/").partition("/")
    query = environ.get("QUERY_STRING", "")
    if method == "GET" and bucket and not key:
        action = "list" if "versioning" not in query else "other"
    elif method == "POST" and "delete" in query:
        action = "delete"
    elif method in ("PUT", "GET", "HEAD", "DELETE") and key:
        action = method.lower()
    else:
        action = "other"
    return Request(method, bucket, key, action)
