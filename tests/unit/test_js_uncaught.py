"""The first line of a JavaScript function's uncaught exception, for its 500 body."""

from __future__ import annotations

from wasmlet.js.uncaught import MAX_MESSAGE_CHARS, uncaught_message


def test_first_line_of_the_report() -> None:
    report = b"Uncaught Error: Unexpected error\n    at handler (handler.js:4)\n"
    assert uncaught_message(report) == "Uncaught Error: Unexpected error"
    assert uncaught_message(b'Uncaught {"code":7}\n') == 'Uncaught {"code":7}'


def test_bounded_and_without_control_characters() -> None:
    long = uncaught_message(b"Uncaught Error: " + b"x" * 5000 + b"\nstack")
    assert long is not None and len(long) == MAX_MESSAGE_CHARS and long.endswith("...")
    assert uncaught_message(b"Uncaught Error: a\rb\x1b[31m\n") == "Uncaught Error: a b [31m"
    assert uncaught_message("Uncaught Error: é\n".encode()) == "Uncaught Error: é"


def test_other_stderr_is_not_a_report() -> None:
    assert uncaught_message(b"") is None
    assert uncaught_message(b"panic: boom\nUncaught Error: late\n") is None
