"""The JavaScript engine is built (or found in its cache) once, before any JS test.

The first build takes about 20 s; doing it here keeps it out of any one deploy
request's time, and a build failure shows as a fixture error with zig's output.
"""

from __future__ import annotations

import pytest

from wasmlet.js.engine import EngineBuild, ensure_engine


@pytest.fixture(scope="session", autouse=True)
def js_engine() -> EngineBuild:
    return ensure_engine()
