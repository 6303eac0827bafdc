"""Exit codes of the `wasmlet` command: they say what happened."""

from __future__ import annotations

from enum import IntEnum

from wasmlet.errors import ConnectionFailed, FunctionError


class ExitCode(IntEnum):
    OK = 0
    FUNCTION_FAILED = 1  # the function ran and failed (5xx)
    USAGE = 2  # bad command line (click's own code)
    NOT_FOUND = 3
    UNAUTHORIZED = 4
    INVALID_REQUEST = 5  # 400 / 413: fix the request
    UNAVAILABLE = 6  # 429 / 503: try again later
    CONNECTION_FAILED = 7  # the server could not be reached


def exit_code_for(error: FunctionError) -> ExitCode:
    if isinstance(error, ConnectionFailed):
        return ExitCode.CONNECTION_FAILED
    return exit_code_for_status(error.status)


def exit_code_for_status(status: int) -> ExitCode:
    """The code of an HTTP answer (`invoke -i` prints error answers, then exits with it)."""
    if status < 400:
        return ExitCode.OK
    if status == 404:
        return ExitCode.NOT_FOUND
    if status == 401:
        return ExitCode.UNAUTHORIZED
    if status in (429, 503):
        return ExitCode.UNAVAILABLE
    if 400 <= status < 500:
        return ExitCode.INVALID_REQUEST
    return ExitCode.FUNCTION_FAILED
