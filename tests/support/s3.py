"""A local S3-compatible service for the tests: moto in server mode on 127.0.0.1.

`moto_s3` runs it on a thread of the test process, everyone allowed. `moto_s3_with_iam`
runs it as a child process with moto's IAM authorization on (INITIAL_NO_AUTH_ACTION_COUNT:
the first requests set things up, every later one is checked against its user's policies,
http://docs.getmoto.org/en/latest/docs/iam.html), so a user without rights gets S3's own
403 AccessDenied.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from tests.support.waiting import wait_until

REGION = "us-east-1"
# moto accepts any key pair until authorization is on; these are not secrets.
ACCESS_KEY = "findimage-test-key"
SECRET_KEY = "findimage-test-secret"


class FetchCounter:
    """Wraps moto's WSGI app: counts the body bytes its GET answers carry, which is what a
    client fetched (a ranged GET carries only its range)."""

    def __init__(self, app: Any):
        self._app = app
        self._lock = threading.Lock()
        self.body_bytes = 0

    def reset(self) -> None:
        with self._lock:
            self.body_bytes = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        body = self._app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "GET":
            return body
        return self._counted(body)

    def _counted(self, body: Iterable[bytes]) -> Iterator[bytes]:
        try:
            for chunk in body:
                with self._lock:
                    self.body_bytes += len(chunk)
                yield chunk
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()


@dataclass
class S3Service:
    endpoint_url: str
    # Set where the server runs in this process (moto_s3): what GET answers carried.
    fetched: FetchCounter | None = None

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=REGION,
        )

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "image/jpeg") -> None:
        """As `aws s3 cp` uploads a picture: with its media type."""
        self.client().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)


def credentials_env() -> dict[str, str]:
    """The usual AWS variables, and no shared files that could lend other credentials."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@contextmanager
def moto_s3() -> Iterator[S3Service]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    # The werkzeug server moto runs calls `self.app` for each request.
    counter = FetchCounter(server._server.app)  # type: ignore[union-attr]
    server._server.app = counter  # type: ignore[union-attr]
    host, port = server.get_host_and_port()
    endpoint_url = f"http://{host}:{port}"
    # moto keeps its buckets in this process, whichever server made them: start empty
    # (http://docs.getmoto.org/en/latest/docs/server_mode.html#reset-api).
    requests.post(f"{endpoint_url}/moto-api/reset", timeout=30).raise_for_status()
    try:
        yield S3Service(endpoint_url, counter)
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def moto_s3_with_iam(setup_requests: int) -> Iterator[S3Service]:
    """The server with authorization on after `setup_requests` requests."""
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(setup_requests)}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    try:
        wait_until(listening, 60, "moto's server to listen")
        yield S3Service(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(30)
