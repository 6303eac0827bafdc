"""One default TLS context for the test process, instead of one per HTTP request.

`httpx.get(...)`, `httpx.post(...)` and every `httpx.Client()` build a new transport,
and each transport a new `ssl.create_default_context(cafile=certifi.where())`, which
parses the whole CA bundle: ~50 ms of CPU, for requests that are all plain HTTP to
127.0.0.1. The suite makes thousands of them (polling /metrics, deploys, invokes), so
the bundle parsing was a large share of its CPU time. `share_default_context()` makes
`ssl.create_default_context` return one context per distinct set of arguments, built
once. Only the test process is changed; servers under test are separate processes.

No test changes a context it got from `ssl.create_default_context` (nothing in the
suite speaks TLS); a test that needs its own should build an `ssl.SSLContext` itself.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

__all__ = ["share_default_context"]

_original = ssl.create_default_context
_contexts: dict[tuple[Any, ...], ssl.SSLContext] = {}
_lock = threading.Lock()


def _shared(
    purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH,
    *,
    cafile: Any = None,
    capath: Any = None,
    cadata: Any = None,
) -> ssl.SSLContext:
    key = (purpose, cafile, capath, cadata)
    try:
        hash(key)
    except TypeError:  # a bytearray or other buffer: not shared
        return _original(purpose, cafile=cafile, capath=capath, cadata=cadata)
    with _lock:
        context = _contexts.get(key)
        if context is None:
            context = _original(purpose, cafile=cafile, capath=capath, cadata=cadata)
            _contexts[key] = context
        return context


def share_default_context() -> None:
    """From now on, `ssl.create_default_context(...)` gives a context built once."""
    ssl.create_default_context = _shared
