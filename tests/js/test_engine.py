"""Packaged JavaScript run by the real compiler and executor, as a worker runs it:
what only the outcome shows (log levels, exit codes) and the trigger dispatch."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from tests.support.js import example
from wasmlet.errors import InvalidSource
from wasmlet.js.package import METADATA_SECTION, JavaScriptPackager
from wasmlet.runtime.compiler import ModuleCompiler
from wasmlet.runtime.executor import Executor
from wasmlet.runtime.outcome import Job, LogLevel, Outcome, OutcomeKind
from wasmlet.runtime.wasmbin import sections

MB = 1024 * 1024
_ids = itertools.count()


class Run(Protocol):
    def __call__(
        self,
        source: str,
        *,
        stdin: bytes = b"",
        env: dict[str, str] | None = None,
        triggers: list[dict[str, Any]] | None = None,
        timeout_ms: int = 5000,
    ) -> Outcome: ...


@pytest.fixture(scope="module")
def packager() -> JavaScriptPackager:
    return JavaScriptPackager()


@pytest.fixture(scope="module")
def run(packager: JavaScriptPackager, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    compiler = ModuleCompiler(tmp_path_factory.mktemp("compiled"))
    with Executor() as executor:

        def run(
            source: str,
            *,
            stdin: bytes = b"",
            env: dict[str, str] | None = None,
            triggers: list[dict[str, Any]] | None = None,
            timeout_ms: int = 5000,
        ) -> Outcome:
            module = compiler.compile(packager.package(source, triggers=triggers).wasm)
            job = Job(
                invocation_id=f"js-{next(_ids)}",
                module_key=module.key,
                module_path=str(module.path),
                stdin=stdin,
                env={"WASMLET_TRIGGER": "http", "WASMLET_HTTP_METHOD": "POST", **(env or {})},
                argv=("function",),
                timeout_ms=timeout_ms,
                memory_limit_bytes=128 * MB,
                stdout_limit=MB,
                stderr_limit=64 * 1024,
            )
            return executor.run(job)

        yield run


def test_console_methods_log_at_their_levels(run: Run) -> None:
    source = """
export function handler() {
  console.debug("d");
  console.log("l", 1, { a: [1, 2] }, null, undefined);
  console.info("i");
  console.warn("w");
  console.error("e", new Error("boom"));
  return "done";
}
"""
    outcome = run(source)
    assert outcome.kind is OutcomeKind.OK, outcome.stderr
    assert outcome.stderr == b""
    levels = [level for level, _ in outcome.logs]
    assert levels == [LogLevel.DEBUG, LogLevel.INFO, LogLevel.INFO, LogLevel.WARN, LogLevel.ERROR]
    assert outcome.logs[1][1] == 'l 1 {"a":[1,2]} null undefined'
    assert outcome.logs[4][1].startswith("e Error: boom\n    at handler (handler.js:7)")


def test_an_uncaught_error_exits_1_with_the_stack_on_stderr_and_in_the_log(run: Run) -> None:
    outcome = run(example("throw_error"))
    assert outcome.kind is OutcomeKind.EXIT_ERROR
    assert outcome.exit_code == 1
    assert outcome.stderr == b"Uncaught Error: Unexpected error\n    at handler (handler.js:4)\n"
    assert outcome.logs == [
        (LogLevel.ERROR, "Uncaught Error: Unexpected error\n    at handler (handler.js:4)")
    ]


def test_a_thrown_non_error_value_is_reported(run: Run) -> None:
    outcome = run("export function handler() { throw { code: 7 }; }\n")
    assert outcome.exit_code == 1
    assert outcome.stderr == b'Uncaught {"code":7}\n'


def test_a_rejection_after_an_await_is_reported(run: Run) -> None:
    source = """
export async function handler() {
  await null;
  await new Promise((resolve) => setTimeout(resolve, 1));
  throw new RangeError("late");
}
"""
    outcome = run(source)
    assert outcome.exit_code == 1
    assert outcome.stderr.startswith(b"Uncaught RangeError: late\n")


def test_a_typed_array_over_the_limit_is_a_memory_limit(run: Run) -> None:
    outcome = run(example("memory_hog"))
    assert outcome.kind is OutcomeKind.MEMORY_LIMIT
    assert b"InternalError: out of memory" in outcome.stderr


def test_an_infinite_loop_is_stopped_at_the_deadline(run: Run) -> None:
    outcome = run(example("timeout"), timeout_ms=300)
    assert outcome.kind is OutcomeKind.TIMEOUT


def test_a_database_trigger_calls_the_named_export_with_the_record(run: Run) -> None:
    source = """
export function handler() { return "http"; }
export async function onUserCreated(user, event) {
  console.log("created", user.email);
  return { user, table: event.table, id: event.id };
}
export function onOrder(order) { return { order: order.id }; }
"""
    triggers: list[dict[str, Any]] = [
        {"type": "http"},
        {"type": "database", "table": "users", "handler": "onUserCreated"},
        {"type": "database", "table": "public.orders", "events": ["insert"], "handler": "onOrder"},
    ]
    event = {
        "type": "INSERT",
        "table": "users",
        "schema": "public",
        "record": {"id": 1, "email": "user@example.com"},
        "old_record": None,
        "id": "evt-1",
    }
    outcome = run(
        source,
        stdin=json.dumps(event).encode(),
        env={"WASMLET_TRIGGER": "database"},
        triggers=triggers,
    )
    assert outcome.kind is OutcomeKind.OK, outcome.stderr
    assert json.loads(outcome.stdout) == {
        "user": {"id": 1, "email": "user@example.com"},
        "table": "users",
        "id": "evt-1",
    }
    assert outcome.logs == [(LogLevel.INFO, "created user@example.com")]
    order = {**event, "table": "orders", "record": {"id": 9}}
    outcome = run(
        source, stdin=json.dumps(order).encode(), env={"WASMLET_TRIGGER": "database"},
        triggers=triggers,
    )  # fmt: skip
    assert json.loads(outcome.stdout) == {"order": 9}


def test_other_triggers_call_handler_with_the_event(run: Run) -> None:
    source = "export function handler(event) { return { got: event }; }\n"
    outcome = run(source, stdin=b'{"at": "2026-01-01T00:00:00Z"}', env={"WASMLET_TRIGGER": "cron"})
    assert json.loads(outcome.stdout) == {"got": {"at": "2026-01-01T00:00:00Z"}}


def test_the_module_carries_its_source(packager: JavaScriptPackager) -> None:
    source = example("hello")
    wasm = packager.package(source, filename="hello.js").wasm
    custom = [wasm[s.start : s.end] for s in sections(wasm) if s.id == 0]
    prefix = bytes([len(METADATA_SECTION)]) + METADATA_SECTION.encode()
    (payload,) = [c[len(prefix) :] for c in custom if c.startswith(prefix)]
    metadata = json.loads(payload)
    assert metadata["source"] == source
    assert metadata["filename"] == "hello.js"
    assert metadata["runtime"] == "javascript"


def test_the_same_source_packages_to_the_same_bytes(packager: JavaScriptPackager) -> None:
    # Deterministic output means a redeploy of unchanged code reuses the compiled module.
    source = example("hello")
    assert packager.package(source).wasm == packager.package(source).wasm


def test_syntax_error_positions_count_characters_not_bytes(packager: JavaScriptPackager) -> None:
    with pytest.raises(InvalidSource) as caught:
        packager.package("const café = 'π';\nconst s = 'ü' +* 1;\n")
    # 'ü' is two bytes in UTF-8 and one column: the '*' is the 16th character.
    assert "(handler.js: line 2, column 16)" in caught.value.message


def test_runaway_recursion_is_a_function_error_with_a_bounded_stack(run: Run) -> None:
    source = "function f(n) {\n  return f(n + 1) + 1;\n}\nexport const handler = () => f(0);\n"
    outcome = run(source)
    assert outcome.kind is OutcomeKind.EXIT_ERROR
    assert outcome.stderr.startswith(b"Uncaught InternalError: stack overflow\n")
    assert outcome.stderr.count(b"    at f (handler.js:2)\n") == 30
    assert outcome.stderr.endswith(b" more frames\n")
