"""The message of a JavaScript function's uncaught exception, for its error body.

The prelude (prelude.js, `report`) writes an uncaught exception to stderr as
`Uncaught NAME: MESSAGE` and its stack, then the engine exits with code 1. The first
line of that report, bounded and without control characters, is what the caller is
told; the stack stays in the function's logs."""

from __future__ import annotations

import re

PREFIX = b"Uncaught "
MAX_MESSAGE_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def uncaught_message(stderr: bytes) -> str | None:
    """`Uncaught Error: boom` (cut to MAX_MESSAGE_CHARS with `...`), or None when stderr
    does not start with the prelude's report."""
    if not stderr.startswith(PREFIX):
        return None
    first = stderr.split(b"\n", 1)[0][: MAX_MESSAGE_CHARS * 4].decode("utf-8", "replace")
    first = _CONTROL.sub(" ", first).rstrip()
    if len(first) > MAX_MESSAGE_CHARS:
        first = first[: MAX_MESSAGE_CHARS - 3].rstrip() + "..."
    return first
