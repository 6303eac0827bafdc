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
