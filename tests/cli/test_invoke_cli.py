"""`wasmlet invoke NAME -X METHOD -H 'Name: value' --path /sub --data @file -i`: the flag
parsing (cli/invoke_flags.py), then over a real server with a JavaScript echo."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from tests.cli.test_cli import run_cli
from tests.support.server import ServerProcess
from wasmlet.cli.exit_codes import ExitCode
from wasmlet.cli.invoke_flags import head, parse_headers, parse_method, parse_path

ECHO = """
export async function handler(req) {
  if (req.path === "/teapot") {
    return new Response("short and stout", { status: 418, headers: { "x-pot": "1" } });
  }
  return new Response(JSON.stringify({
    method: req.method, path: req.path, query: req.query,
    trace: req.headers.get("x-trace"), body: await req.text(),
  }), { headers: { "content-type": "application/json", "x-echo": "yes" } });
}
"""


def test_flag_parsing() -> None:
    assert parse_method("put") == "PUT"
    assert parse_headers(["X-Trace:  abc ", "Accept: */*"]) == {"x-trace": "abc", "accept": "*/*"}
    assert parse_path("users/7?x=1") == "/users/7?x=1"
    assert parse_path(None) == ""
    assert head(201, {"a": "b"}) == "HTTP/1.1 201 Created\r\na: b\r\n\r\n"


@pytest.mark.parametrize(
    ("call", "flag"),
    [
        (lambda: parse_method("FETCH"), "'-X' / '--method'"),
        (lambda: parse_headers(["no colon"]), "'-H' / '--header'"),
        (lambda: parse_headers(["Bad Name: v"]), "'-H' / '--header'"),
        (lambda: parse_headers(["X: a\r\nInjected: 1"]), "'-H' / '--header'"),
        (lambda: parse_path("/a b"), "'--path'"),
    ],
)
def test_bad_values_name_their_flag(call: object, flag: str) -> None:
    with pytest.raises(click.BadParameter) as caught:
        call()  # type: ignore[operator]
    assert caught.value.param_hint == flag


def test_invoke_with_method_headers_path_file_and_head(
    server: ServerProcess, fname: str, tmp_path: Path
) -> None:
    source = tmp_path / "echo.js"
    source.write_text(ECHO)
    deployed = run_cli(server, "deploy", fname, str(source))
    assert deployed.returncode == 0, deployed.stderr.decode()
    payload = tmp_path / "payload.txt"
    payload.write_text("from a file")

    done = run_cli(
        server, "invoke", fname, "-X", "PUT", "-H", "X-Trace: abc", "--path", "/users/7?n=1",
        "--data", f"@{payload}", "-i",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    head_text, _, body = done.stdout.decode().partition("\r\n\r\n")
    status, *header_lines = head_text.split("\r\n")
    assert status == "HTTP/1.1 200 OK"
    headers = dict(line.split(": ", 1) for line in header_lines)
    assert headers["x-echo"] == "yes" and headers["x-request-id"]
    assert json.loads(body) == {
        "method": "PUT", "path": "/users/7", "query": {"n": "1"}, "trace": "abc",
        "body": "from a file",
    }  # fmt: skip

    plain = run_cli(server, "invoke", fname, "-d", "inline")
    assert json.loads(plain.stdout)["body"] == "inline"  # no head without -i
    assert json.loads(plain.stdout)["method"] == "POST"

    teapot = run_cli(server, "invoke", fname, "--path", "/teapot", "-i")
    assert teapot.returncode == ExitCode.INVALID_REQUEST
    text = teapot.stdout.decode()
    assert text.startswith("HTTP/1.1 418 ")  # an error answer is printed whole with -i
    assert "x-pot: 1\r\n" in text and text.endswith("short and stout")

    bad = run_cli(server, "invoke", fname, "-H", "nocolon")
    assert bad.returncode == ExitCode.USAGE and "-H" in bad.stderr.decode()
