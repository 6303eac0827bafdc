"""Function config: strict parsing, readable refusals, and stored configs that a newer
rule refuses still loading."""

from __future__ import annotations

import json

import pytest

from wasmlet.errors import InvalidConfig
from wasmlet.registry.models import FunctionConfig


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"timeout_ms": "10"}, "config.timeout_ms must be an integer"),
        ({"retry": {"jitter": float("nan")}}, "config.retry.jitter must be a finite number"),
        ({"retry": {"multiplier": True}}, "config.retry.multiplier must be a number"),
        ({"max_concurrency": 0}, "config.max_concurrency must be at least 1"),
        ({"circuit_breaker": {"failure_rate": 1}}, "failure_rate must be less than 1"),
        ({"env": {"A\0": "x"}}, 'config.env name "A\\u0000" is not a valid variable name'),
        ({"content_type": "text/html"}, "config.content_type must be one of"),
    ],
)
def test_refusals_name_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidConfig) as refused:
        FunctionConfig.parse(raw)
    assert message in refused.value.message


def test_patch_fields_are_named_as_written() -> None:
    with pytest.raises(InvalidConfig) as refused:
        FunctionConfig().merged({"public": "yes"})
    assert refused.value.message.endswith(": public must be true or false")


def test_numbers_that_are_numbers_are_accepted() -> None:
    config = FunctionConfig.parse(
        {"retry": {"multiplier": 3}, "circuit_breaker": {"cooldown_s": 5}}
    )
    assert config.retry.multiplier == 3.0 and config.circuit_breaker.cooldown_s == 5.0


def test_a_stored_config_refused_by_a_newer_rule_loads_with_defaults_for_those_fields() -> None:
    stored = {
        "timeout_ms": 500,
        "env": {"OK": "1", "A=B": "2", "NUL": "a\0b"},
        "response_content_type": "text/plain\r\nX-Evil: 1",
        "circuit_breaker": {"cooldown_s": 1e308, "min_calls": 5},
    }
    config = FunctionConfig.from_stored(json.dumps(stored))
    assert config.timeout_ms == 500
    assert config.env == {"OK": "1"}
    assert config.response_content_type == "text/plain; charset=utf-8"
    assert config.circuit_breaker.cooldown_s is None and config.circuit_breaker.min_calls == 5
