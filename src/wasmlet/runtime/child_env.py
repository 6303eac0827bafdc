"""The environment of a child process that runs or handles untrusted code.

Workers (and the compile child) get an allow-list of the server's environment: what the
Python interpreter needs to start, find its packages and pick a locale, nothing else.
Database URLs, `PG*` variables, API keys and whatever an operator adds later stay in
the server. The executor reads no environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

PASSED = frozenset(
    {
        "PATH",  # subprocesses of the interpreter, if any
        "PYTHONPATH",  # where wasmlet was found when it is not installed
        "PYTHONHOME",
        "VIRTUAL_ENV",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
    }
)
PASSED_PREFIXES = ("LC_",)


def allowed_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The allow-listed part of `environ`."""
    return {
        name: value
        for name, value in environ.items()
        if name in PASSED or name.startswith(PASSED_PREFIXES)
    }


def child_environment() -> dict[str, str]:
    """The allow-listed part of this process's environment."""
    return allowed_environment(os.environ)
