"""Deploy-time and PATCH refusals through the real server, on SQLite and PostgreSQL:
each is 400 with its documented type and a readable message, and stores nothing (a new
name stays 404, an existing function keeps its version, config and schedules)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.appdb import Backend, backend
from tests.support.build import wat
from tests.support.server import ServerProcess

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
HELLO = wat("hello")
EVERY_HOUR = {"type": "schedule", "cron": "0 * * * *"}


@pytest.fixture(scope="module", params=BACKENDS)
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with backend(request.param, tmp_path_factory.mktemp("validation")) as b:
        yield b


def _get(server: ServerProcess, name: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/functions/v1/functions/{name}", headers=server.service_headers()
    )


def _schedules_of(server: ServerProcess, name: str) -> list[dict[str, Any]]:
    response = httpx.get(server.url + "/functions/v1/schedules", headers=server.service_headers())
    assert response.status_code == 200
    return [s for s in response.json()["schedules"] if s["function"] == name]


def _assert_refused(response: httpx.Response, error_type: str, says: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == error_type, error
    message = error["message"]
    assert says in message, message
    for python_ism in ("Input should", "Value error", "[key]", "\n", "\r", "\\x00"):
        assert python_ism not in message, message
    assert error["request_id"] == response.headers["x-request-id"]


def _existing(server: ServerProcess, name: str) -> dict[str, Any]:
    """A deployed function (with a schedule) whose state a refusal must not change."""
    response = server.deploy(name, HELLO, {"timeout_ms": 1234}, [EVERY_HOUR])
    assert response.status_code == 201, response.text
    state: dict[str, Any] = _get(server, name).json()
    return state


def _assert_unchanged(server: ServerProcess, name: str, before: dict[str, Any]) -> None:
    after = _get(server, name).json()
    for field in ("version", "config", "triggers", "module_sha256", "updated_at", "enabled"):
        assert after[field] == before[field], field
    (schedule,) = _schedules_of(server, name)
    assert schedule["cron"] == EVERY_HOUR["cron"]


CONFIGS = {
    "timeout-string": ({"timeout_ms": "10"}, "config.timeout_ms must be an integer"),
    "timeout-bool": ({"timeout_ms": True}, "config.timeout_ms must be an integer"),
    "timeout-huge-float": ({"timeout_ms": 1e308}, "config.timeout_ms must be an integer"),
    "timeout-float": ({"timeout_ms": 10.5}, "config.timeout_ms must be an integer"),
    "timeout-over-operator-max": (
        {"timeout_ms": 400_000},
        "config.timeout_ms must be at most 300000 (the operator's maximum)",
    ),
    "memory-bool": ({"memory_mb": True}, "config.memory_mb must be an integer"),
    "public-string": ({"public": "yes"}, "config.public must be true or false"),
    "public-int": ({"public": 1}, "config.public must be true or false"),
    "cooldown-huge": (
        {"circuit_breaker": {"cooldown_s": 1e308}},
        "config.circuit_breaker.cooldown_s must be at most 86400",
    ),
    "window-huge": (
        {"circuit_breaker": {"window_s": 1e308}},
        "config.circuit_breaker.window_s must be at most 86400",
    ),
    "min-calls-huge": (
        {"circuit_breaker": {"min_calls": 10**12}},
        "config.circuit_breaker.min_calls must be at most 100000",
    ),
    "retry-count-string": (
        {"retry": {"max_retries": "3"}},
        "config.retry.max_retries must be an integer",
    ),
    "retry-unknown": ({"retry": {"tries": 3}}, "config.retry.tries is not a known field"),
    "env-empty-name": ({"env": {"": "x"}}, 'config.env name "" is not a valid variable name'),
    "env-name-with-equals": (
        {"env": {"A=B": "x"}},
        'config.env name "A=B" is not a valid variable name',
    ),
    "env-name-digit-first": (
        {"env": {"1A": "x"}},
        'config.env name "1A" is not a valid variable name',
    ),
    "env-name-reserved": ({"env": {"WASMLET_FUNCTION": "x"}}, '"WASMLET_FUNCTION" is reserved'),
    "env-nul-value": ({"env": {"A": "x\0y"}}, "config.env.A contains a NUL character"),
    "env-number-value": ({"env": {"A": 1}}, "config.env.A must be a string"),
    "env-too-many": (
        {"env": {f"V{i}": "x" for i in range(129)}},
        "config.env has more than 128 variables",
    ),
    "env-too-big": (
        {"env": {"A": "x" * 40_000, "B": "y" * 40_000}},
        "config.env is over 65536 bytes in all",
    ),
    "response-content-type-crlf": (
        {"response_content_type": "text/plain\r\nX-Evil: 1"},
        "config.response_content_type must be a header value",
    ),
    "response-content-type-lf": (
        {"response_content_type": "text/plain\n"},
        "config.response_content_type must be a header value",
    ),
    "response-content-type-non-ascii": (
        {"response_content_type": "text/plain; charset=\u00e9"},
        "config.response_content_type must be a header value",
    ),
    "unknown-field": ({"timeout": 10}, "config.timeout is not a known field"),
    "unknown-odd-field": ({"a\nb": 1}, 'config["a\\nb"] is not a known field'),
    "config-not-object": ([1, 2], "config must be an object"),
}


@pytest.mark.parametrize(("config", "says"), CONFIGS.values(), ids=CONFIGS.keys())
def test_bad_config_is_400_and_stores_nothing(
    db: Backend, fname: str, config: Any, says: str
) -> None:
    server = db.server
    _assert_refused(server.deploy(fname, HELLO, config), "invalid_config", says)
    assert _get(server, fname).status_code == 404
    assert _schedules_of(server, fname) == []

    existing = fname + "-v1"
    before = _existing(server, existing)
    _assert_refused(server.deploy(existing, HELLO, config), "invalid_config", says)
    _assert_unchanged(server, existing, before)


@pytest.mark.parametrize(("config", "says"), CONFIGS.values(), ids=CONFIGS.keys())
def test_patch_is_as_strict_as_deploy(db: Backend, fname: str, config: Any, says: str) -> None:
    server = db.server
    before = _existing(server, fname)
    response = httpx.patch(
        f"{server.url}/functions/v1/functions/{fname}",
        json={"config": config},
        headers=server.service_headers(),
    )
    _assert_refused(response, "invalid_config", says)
    _assert_unchanged(server, fname, before)


def test_patch_names_top_level_fields_as_written(db: Backend, fname: str) -> None:
    server = db.server
    before = _existing(server, fname)
    response = httpx.patch(
        f"{server.url}/functions/v1/functions/{fname}",
        json={"timeout_ms": "10"},
        headers=server.service_headers(),
    )
    _assert_refused(response, "invalid_config", "timeout_ms must be an integer")
    assert "config." not in response.json()["error"]["message"]
    _assert_unchanged(server, fname, before)


TRIGGERS = {
    "cron-31-february": (
        {"type": "schedule", "cron": "0 0 31 2 *"},
        'triggers[0].cron "0 0 31 2 *" is not a valid cron expression, or never fires',
    ),
    "cron-30-february": (
        {"type": "schedule", "cron": "0 0 30 2 *"},
        'triggers[0].cron "0 0 30 2 *"',
    ),
    "cron-31-april": ({"type": "schedule", "cron": "0 0 31 4 *"}, 'triggers[0].cron "0 0 31 4 *"'),
    "cron-with-seconds-31-february": (
        {"type": "schedule", "cron": "0 0 0 31 2 *"},
        'triggers[0].cron "0 0 0 31 2 *"',
    ),
    "cron-not-text": ({"type": "schedule", "cron": 5}, "triggers[0].cron must be a cron"),
    "cron-control-characters": (
        {"type": "schedule", "cron": "0 0 * * *\u0000"},
        "triggers[0].cron must be a cron",
    ),
    "zone-too-long": (
        {"type": "schedule", "cron": "0 * * * *", "timezone": "A" * 5000},
        "triggers[0].timezone",
    ),
    "zone-path": (
        {"type": "schedule", "cron": "0 * * * *", "timezone": "../../etc/passwd"},
        'triggers[0].timezone "../../etc/passwd" is not a known IANA time zone',
    ),
    "schedule-unknown-field": (
        {"type": "schedule", "cron": "0 * * * *", "every": "hour"},
        "triggers[0].every is not a known field",
    ),
    "schedule-bad-handler": (
        {"type": "schedule", "cron": "0 * * * *", "handler": {"x": 1}},
        "triggers[0].handler must be the name of an export",
    ),
    "catch-up-cap-bool": (
        {"type": "schedule", "cron": "0 * * * *", "catch_up_cap": True},
        "triggers[0].catch_up_cap must be an integer",
    ),
    "http-unknown-field": ({"type": "http", "path": "/x"}, "triggers[0].path is not a known field"),
    "http-bad-handler": (
        {"type": "http", "handler": "not an identifier"},
        "triggers[0].handler must be the name of an export",
    ),
    "database-unknown-field": (
        {"type": "database", "table": "users", "when": "always"},
        "triggers[0].when is not a known field",
    ),
    "database-unicode-table": (
        {"type": "database", "table": "us\u00e9rs"},
        'triggers[0].table "us\\u00e9rs" is not a table name',
    ),
    "unknown-type-repr": (
        {"type": "pigeon\n"},
        'triggers[0].type "pigeon\\n" is not a known trigger type',
    ),
    "not-an-object": ("http", "triggers[0] must be an object"),
}


@pytest.mark.parametrize(("trigger", "says"), TRIGGERS.values(), ids=TRIGGERS.keys())
def test_bad_trigger_is_400_and_stores_nothing(
    db: Backend, fname: str, trigger: Any, says: str
) -> None:
    server = db.server
    _assert_refused(server.deploy(fname, HELLO, None, [trigger]), "invalid_trigger", says)
    assert _get(server, fname).status_code == 404
    assert _schedules_of(server, fname) == []

    existing = fname + "-v1"
    before = _existing(server, existing)
    refused = server.deploy(existing, HELLO, None, [EVERY_HOUR, trigger])
    _assert_refused(refused, "invalid_trigger", says.replace("triggers[0]", "triggers[1]"))
    _assert_unchanged(server, existing, before)


def test_too_many_triggers_is_400(db: Backend, fname: str) -> None:
    triggers = [{"type": "schedule", "cron": f"{m} * * * *"} for m in range(33)]
    response = db.server.deploy(fname, HELLO, None, triggers)
    _assert_refused(response, "invalid_trigger", "at most 32 triggers")
    assert _get(db.server, fname).status_code == 404
    assert _schedules_of(db.server, fname) == []


def test_leap_day_cron_is_accepted(db: Backend, fname: str) -> None:
    """29 February fires within the horizon: only impossible dates are refused."""
    response = db.server.deploy(fname, HELLO, None, [{"type": "schedule", "cron": "0 0 29 2 *"}])
    assert response.status_code == 201, response.text
    (schedule,) = _schedules_of(db.server, fname)
    assert schedule["next_run"]


@pytest.mark.parametrize("name", ["abc\n", "abc\r\n", "abc ", " abc", "abc\t"])
def test_name_with_trailing_or_leading_white_space_is_invalid_name(db: Backend, name: str) -> None:
    response = db.server.deploy(name, HELLO)
    _assert_refused(response, "invalid_name", "leading or trailing white space")
    assert _get(db.server, name.strip()).status_code == 404


def _multipart(server: ServerProcess, content_type: str, body: bytes) -> httpx.Response:
    return httpx.post(
        server.url + "/functions/v1/deploy",
        content=body,
        headers={**server.service_headers(), "content-type": content_type},
    )


def test_multipart_without_boundary_is_invalid_payload(db: Backend, fname: str) -> None:
    response = _multipart(db.server, "multipart/form-data", b"name=" + fname.encode())
    _assert_refused(response, "invalid_payload", "Malformed deploy request: Missing boundary")
    assert _get(db.server, fname).status_code == 404


def test_garbled_multipart_is_invalid_payload(db: Backend, fname: str) -> None:
    body = b"--XyZ\r\nContent-Disposition: form-data\r\n\r\n" + fname.encode() + b"\r\n--XyZ--\r\n"
    response = _multipart(db.server, "multipart/form-data; boundary=XyZ", body)
    _assert_refused(response, "invalid_payload", "Malformed deploy request")
    assert _get(db.server, fname).status_code == 404


def test_multipart_with_an_unknown_field_is_invalid_payload(db: Backend, fname: str) -> None:
    response = httpx.post(
        db.server.url + "/functions/v1/deploy",
        data={"name": fname, "confg": '{"public": true}'},
        files={"wasm": ("hello.wasm", HELLO, "application/wasm")},
        headers=db.server.service_headers(),
    )
    _assert_refused(response, "invalid_payload", '"confg" is not a known field')
    assert _get(db.server, fname).status_code == 404


def test_json_deploy_with_an_unknown_field_is_invalid_payload(db: Backend, fname: str) -> None:
    body = {"name": fname, "wasm": base64.b64encode(HELLO).decode(), "confg": {"public": True}}
    response = db.server.post_deploy(body)
    _assert_refused(response, "invalid_payload", '"confg" is not a known field')
    assert _get(db.server, fname).status_code == 404


def test_multipart_config_is_as_strict_as_json(db: Backend, fname: str) -> None:
    response = httpx.post(
        db.server.url + "/functions/v1/deploy",
        data={"name": fname, "config": '{"timeout_ms": "10"}'},
        files={"wasm": ("hello.wasm", HELLO, "application/wasm")},
        headers=db.server.service_headers(),
    )
    _assert_refused(response, "invalid_config", "config.timeout_ms must be an integer")
    assert _get(db.server, fname).status_code == 404


def test_valid_strict_config_still_deploys_and_runs(db: Backend, fname: str) -> None:
    config = {
        "timeout_ms": 5000,
        "memory_mb": 64,
        "public": True,
        "env": {"GREETING": "a=b c", "_X1": ""},
        "response_content_type": "text/plain; charset=utf-8",
        "retry": {"multiplier": 3, "jitter": 0},
        "circuit_breaker": {"cooldown_s": 10, "window_s": 60.5},
    }
    response = db.server.deploy(fname, HELLO, config, [{"type": "http", "handler": "main"}])
    assert response.status_code == 201, response.text
    assert response.json()["config"]["env"] == config["env"]
    assert response.json()["triggers"] == [{"type": "http", "handler": "main"}]
    assert db.server.invoke(fname).content == b"Hello, wasmlet!"
