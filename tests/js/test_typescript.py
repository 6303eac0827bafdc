"""TypeScript functions: deployed over HTTP (JSON, multipart) and with the CLI, errors
at the .ts file's own lines and columns, type-only imports ignored, other imports refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.js import deploy_js
from tests.support.server import ServerProcess

TS_DIR = Path(__file__).resolve().parents[2] / "examples" / "ts"


def ts_example(name: str) -> str:
    return (TS_DIR / name).read_text(encoding="utf-8")


def _refusal(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_source"
    message: str = error["message"]
    return message


def test_types_enums_generics_deploy_and_answer(server: ServerProcess, fname: str) -> None:
    response = deploy_js(server, fname, ts_example("inventory.ts"), filename="inventory.ts")
    assert response.status_code == 201, response.text
    items = [{"name": "bolts", "count": 4}, {"name": "nuts", "count": 3}]
    answer = server.invoke(fname, json.dumps({"items": items}).encode())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"total": 7, "level": "Low", "plenty": 10}
    many = server.invoke(fname, json.dumps({"items": [{"name": "x", "count": 12}]}).encode())
    assert many.json()["level"] == "Plenty"
    # An enum makes it transformed code, laid out again on the .ts lines: the stack names them.
    failed = server.invoke(fname, json.dumps({"items": [{"name": "x", "count": -1}]}).encode())
    assert failed.status_code == 500
    log = server.wait_for_log(request_id=failed.headers["x-request-id"], operation="invoke")
    assert "RangeError: negative count for x" in log["stderr"]
    assert "at handler (inventory.ts:37)" in log["stderr"], log["stderr"]


def test_transformed_code_that_cannot_be_laid_out_names_the_compiled_file(
    server: ServerProcess, fname: str
) -> None:
    # A whitespace-only line inside a template literal keeps the transformed code's own
    # lines: the stack then names `FILE.ts.js`, never a wrong line of the .ts file.
    source = (
        "enum E { A }\n"
        "const s = `x\n   \n`;\n"
        "export function handler(): string {\n"
        "  throw new Error(s + E.A);\n"
        "}\n"
    )
    assert deploy_js(server, fname, source, filename="t.ts").status_code == 201
    failed = server.invoke(fname)
    assert failed.status_code == 500
    log = server.wait_for_log(request_id=failed.headers["x-request-id"], operation="invoke")
    assert "at handler (t.ts.js:" in log["stderr"], log["stderr"]


def test_multipart_ts_file_and_runtime_stack_at_the_ts_line(
    server: ServerProcess, fname: str
) -> None:
    # Only annotations and interfaces: stripped to blanks, so the stack's line is the .ts line.
    source = (
        "interface Greeting {\n"
        "  text: string;\n"
        "}\n"
        "function check(name: string | null): Greeting {\n"
        "  if (name === null) {\n"
        '    throw new Error("no name");\n'
        "  }\n"
        "  return { text: `hi ${name as string}` };\n"
        "}\n"
        "export function handler(req: { query: Record<string, string> }): Greeting {\n"
        "  return check(req.query.name ?? null);\n"
        "}\n"
    )
    response = httpx.post(
        server.url + "/functions/v1/deploy",
        data={"name": fname},
        files={"source": ("greet.ts", source.encode(), "text/plain")},
        headers=server.service_headers(),
        timeout=120,
    )
    assert response.status_code == 201, response.text
    ok = httpx.post(
        f"{server.url}/functions/v1/invoke/{fname}?name=ts",
        headers=server.anon_headers(),
        timeout=60,
    )
    assert ok.json() == {"text": "hi ts"}
    failed = server.invoke(fname)
    assert failed.status_code == 500
    log = server.wait_for_log(request_id=failed.headers["x-request-id"], operation="invoke")
    assert "at check (greet.ts:6)" in log["stderr"]
    assert "at handler (greet.ts:11)" in log["stderr"]


TS_SYNTAX_ERRORS = [
    ("let a = 1;\nfunction f(x: number { }\nexport const handler = () => a;\n", 2, 22, "got '{'"),
    ("interface A {\n  a: string\n  b: = number;\n}\nexport const handler = () => 1;\n", 3, 6, ""),
    ("export function handler(): Array<number {\n  return [];\n}\n", 1, 41, ""),
    ('const s = "é";\nlet x: number = ;\nexport const handler = () => s;\n', 2, 17, ""),
    # QuickJS, not the transformer, finds this one (a duplicate declaration), in the
    # transformed code of a file with an enum: its position is mapped back.
    ("enum E { A }\n\nconst x = 1;\n   const x = 2;\nexport const handler = () => x;\n", 4, 10, ""),
]


@pytest.mark.parametrize(("source", "line", "column", "words"), TS_SYNTAX_ERRORS)
def test_ts_syntax_error_is_400_at_the_original_line_and_column(
    server: ServerProcess, fname: str, source: str, line: int, column: int, words: str
) -> None:
    message = _refusal(deploy_js(server, fname, source, filename="broken.ts"))
    assert message.startswith("Invalid TypeScript: SyntaxError: "), message
    assert f"(broken.ts: line {line}, column {column})" in message, message
    assert words in message
    found = httpx.get(
        f"{server.url}/functions/v1/functions/{fname}", headers=server.service_headers()
    )
    assert found.status_code == 404


def test_top_level_throw_after_an_enum_names_the_ts_line(server: ServerProcess, fname: str) -> None:
    source = (
        "enum Level {\n  Low,\n  High,\n}\n"
        "function boot(level: Level): void {\n"
        '  throw new Error(`cannot boot at ${Level[level]}`);\n'
        "}\n"
        "boot(Level.High);\n"
        "export const handler = () => 1;\n"
    )  # fmt: skip
    message = _refusal(deploy_js(server, fname, source, filename="boot.ts"))
    assert "Error: cannot boot at High" in message
    assert "(at boot (boot.ts:6))" in message, message


def test_supabase_type_import_and_import_type_are_accepted(
    server: ServerProcess, fname: str
) -> None:
    source = (
        'import "jsr:@supabase/functions-js/edge-runtime.d.ts";\n'
        "import type { Database } from './database.types.ts';\n"
        "import { type Row } from './rows.ts';\n"
        "const answer: number = 42;\n"
        "export function handler(): { answer: number } {\n"
        "  return { answer };\n"
        "}\n"
    )
    response = deploy_js(server, fname, source, filename="typed.ts")
    assert response.status_code == 201, response.text
    assert server.invoke(fname).json() == {"answer": 42}


def test_edge_runtime_line_is_accepted_in_javascript_too(server: ServerProcess, fname: str) -> None:
    source = (
        "import 'jsr:@supabase/functions-js/edge-runtime.d.ts'\n"
        "export const handler = () => 'js';\n"
    )
    response = deploy_js(server, fname, source)
    assert response.status_code == 201, response.text
    assert server.invoke(fname).text == "js"


REFUSED_IMPORTS = [
    ('import x from "npm:lodash";', "npm:lodash", "npm: packages are not available"),
    ("import { z } from 'jsr:@std/zod';", "jsr:@std/zod", "jsr: packages are not available"),
    (
        'import { serve } from "https://deno.land/std@0.168.0/http/server.ts";',
        "https://deno.land/std@0.168.0/http/server.ts",
        "modules are not fetched from URLs",
    ),
    ('import { createClient } from "@supabase/supabase-js";', "@supabase/supabase-js", "bare"),
    ('export { helper } from "./helper.ts";', "./helper.ts", "only this one file is deployed"),
]


@pytest.mark.parametrize("filename", ["imports.ts", "imports.js"])
@pytest.mark.parametrize(("line", "specifier", "words"), REFUSED_IMPORTS)
def test_other_imports_are_refused_naming_the_import(
    server: ServerProcess, fname: str, filename: str, line: str, specifier: str, words: str
) -> None:
    source = f"// a function\n{line}\nexport const handler = () => 1;\n"
    message = _refusal(deploy_js(server, fname, source, filename=filename))
    language = "TypeScript" if filename.endswith(".ts") else "JavaScript"
    assert message.startswith(
        f"Invalid {language}: import {json.dumps(specifier)} refused ({filename}: line 2): "
    ), message
    assert words in message


def test_cli_deploys_a_ts_file(server: ServerProcess, fname: str, tmp_path: Path) -> None:
    env = {**os.environ, "WASMLET_URL": server.url, "WASMLET_KEY": server.service_key}

    def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "wasmlet", *args],
            capture_output=True,
            env=env,
            timeout=120,
            check=False,
        )

    path = tmp_path / "shelf.ts"
    path.write_text(ts_example("inventory.ts"), encoding="utf-8")
    done = cli("deploy", fname, str(path))
    assert done.returncode == 0, done.stderr
    assert f"deployed {fname} version 1" in done.stdout.decode()
    invoked = cli("invoke", fname, "--data", '{"items": [{"name": "a", "count": 0}]}')
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout) == {"total": 0, "level": "Out", "plenty": 10}
    bad = tmp_path / "bad.ts"
    bad.write_text("const n: number = 1;\nexport const handler = (x: ) => n;\n", encoding="utf-8")
    refused = cli("deploy", f"{fname}-bad", str(bad))
    assert refused.returncode == 5  # ExitCode.INVALID_REQUEST
    assert "400 invalid_source" in refused.stderr.decode()
    assert "(bad.ts: line 2, column 28)" in refused.stderr.decode()
