"""Loads a model through ClipEncoder and reports how it went, with every TCP connection opened.

    python -m tests.support.model_loading MODEL

Meant to run as a child process: the hub client reads HF_ENDPOINT and HF_HUB_OFFLINE once,
when it is imported, so only a fresh process started with them set is pointed at a local
stand-in for the hub. The connections are counted by a spy on `socket.create_connection`,
the call both our probe and the hub's HTTP client (httpcore) connect through; it still makes
the real connection. Prints one JSON object: error (the message, or null), connections
([host, port] each, in order) and seconds (the load alone, imports excluded).
"""

from __future__ import annotations

import json
import socket
import sys
import time
from typing import Any


def load_counting_connections(model: str) -> dict[str, Any]:
    connections: list[list[Any]] = []
    real = socket.create_connection

    def counting(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        connections.append([address[0], int(address[1])])
        return real(address, *args, **kwargs)

    socket.create_connection = counting
    import sentence_transformers  # noqa: F401  (imported before the clock starts)

    from findimage.encoders import ClipEncoder
    from findimage.errors import ModelLoadError

    started = time.monotonic()
    try:
        ClipEncoder(model, "FINDIMAGE_IMAGE_MODEL", device="cpu").load()
        error = None
    except ModelLoadError as exc:
        error = str(exc)
    return {"error": error, "connections": connections, "seconds": time.monotonic() - started}


if __name__ == "__main__":
    print(json.dumps(load_counting_connections(sys.argv[1])))
