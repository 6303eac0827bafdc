"""The schema tells the truth (issue 10 item 8): a bounded, deterministic schemathesis
run against a real server finds no server error and no non-conformance.

The run's settings are tests/support/schemathesis.toml (fixed seed, deterministic
generation, a bounded number of examples per operation); its hooks and the check that
allows a 5xx only as a function's outcome are tests/support/schemathesis_hooks.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.support.build import REPO_ROOT, wat
from tests.support.schemathesis_hooks import DEPLOYED

CONFIG = REPO_ROOT / "tests" / "support" / "schemathesis.toml"
RUN_BOUND_S = 1200  # a bound against a hang; the run takes about a minute


@pytest.mark.slow
@pytest.mark.timeout(RUN_BOUND_S + 60)
def test_schemathesis_finds_no_server_error_and_no_nonconformance(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    with start_server() as server:
        assert server.deploy(DEPLOYED, wat("hello")).status_code == 201
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG),
            "run", f"{server.url}/openapi.json", "--no-color",
            "--header", f"Authorization: Bearer {server.service_key}",
            "--report", "junit", "--report-dir", str(tmp_path),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        run = subprocess.run(
            command,
            check=False,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_BOUND_S,
        )
        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-20_000:]
        assert " passed" in output and "failure" not in output.lower(), output[-5000:]
        # The invocations reached the deployed function, and it is still there.
        invoked = server.metric("functions_invocations_total", name=DEPLOYED, status="200")
        assert invoked > 0
        function = httpx.get(
            f"{server.url}/functions/v1/functions/{DEPLOYED}", headers=server.service_headers()
        )
        assert function.status_code == 200


def test_schema_documents_errors_not_422(start_server: ServerFactory) -> None:
    with start_server() as server:
        schema = httpx.get(server.url + "/openapi.json", timeout=60).json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            assert responses["500"]["content"]["application/json"]["schema"] == error_ref
            for status, response in responses.items():
                if status.startswith(("4", "5")) and not (path == "/health" and status == "503"):
                    assert response["content"]["application/json"]["schema"] == error_ref
                    assert "X-Request-Id" in response["headers"]
    metrics = schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain; version=1.0.0; charset=utf-8"]
    invoke = schema["paths"]["/functions/v1/invoke/{name}"]["post"]["responses"]
    assert {"500", "503", "504", "507"} <= set(invoke)
    supabase = schema["paths"]["/functions/v1/{name}"]["post"]["responses"]
    assert supabase["405"]["headers"]["Allow"]["required"] is True
