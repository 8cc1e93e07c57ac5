"""Run an ASGI app (FastAPI) with uvicorn on a loopback port inside this process."""
from __future__ import annotations

import socket
import threading
import time

import uvicorn

from common.errors import LoyalError


class ServiceFailed(LoyalError):
    """An HTTP service did not come up."""


class Service:
    """`with Service(app) as s: s.url` — uvicorn in a thread, stopped on exit."""

    def __init__(self, app, *, host: str = "127.0.0.1", port: int = 0):
        if port == 0:
            with socket.socket() as sock:
                sock.bind((host, 0))
                port = sock.getsockname()[1]
        self.url = f"http://{host}:{port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                     access_log=False, lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> "Service":
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ServiceFailed(f"HTTP service at {self.url} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> "Service":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
