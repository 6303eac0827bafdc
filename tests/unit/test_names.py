from __future__ import annotations

import pytest

from wasmlet.errors import InvalidName
from wasmlet.registry.names import validate_name


@pytest.mark.parametrize("name", ["a", "send-email", "send_email2", "x" * 63])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "Send Email", "-a", "1a", "x" * 64, "a.b", "deploy", "invoke", None, 7]
)
def test_invalid_names(name: object) -> None:
    with pytest.raises(InvalidName):
        validate_name(name)


def test_every_management_path_segment_is_a_reserved_name() -> None:
    """A function named like a management route could not be reached at /functions/v1/NAME."""
    from starlette.routing import Route

    from wasmlet.api.app import create_app
    from wasmlet.registry.names import RESERVED_NAMES
    from wasmlet.settings import Settings

    app = create_app(Settings())
    prefix = "/functions/v1/"
    segments = {
        route.path[len(prefix) :].split("/")[0]
        for route in app.state.management_routes
        if isinstance(route, Route) and route.path.startswith(prefix)
    }
    assert segments, "no management route found"
    assert segments - RESERVED_NAMES == set()
