"""The shipped Prometheus rules: `promtool check rules`, `promtool test rules`, and the
same names, severities, thresholds, windows and `for` durations as the in-server rules.

promtool comes from the Debian package `prometheus` (`.ci/run` installs it). A missing
promtool fails these tests rather than skipping them: the rules must be checked in CI.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from wasmlet.observability.alerts import RULES, WINDOW_S

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES_FILE = RULES_DIR / "alerts.yml"
TESTS_FILE = RULES_DIR / "alerts_test.yml"
PROMTOOL_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path is not None, (
        "promtool is not on PATH: install it with `apt-get install prometheus` "
        "(.ci/run does this in CI)"
    )
    return path


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_S, check=False
    )


def test_promtool_check_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", RULES_FILE.name, cwd=RULES_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULES)} rules found" in result.stdout


def test_promtool_test_rules(promtool: str) -> None:
    result = run(promtool, "test", "rules", TESTS_FILE.name, cwd=RULES_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_tests_catch_a_wrong_threshold(promtool: str, tmp_path: Path) -> None:
    """The unit tests are not vacuous: a 1% error threshold fails them."""
    rules = RULES_FILE.read_text()
    assert rules.count("> 0.1\n") == 1
    (tmp_path / RULES_FILE.name).write_text(rules.replace("> 0.1\n", "> 0.01\n"))
    shutil.copy(TESTS_FILE, tmp_path / TESTS_FILE.name)
    result = run(promtool, "test", "rules", TESTS_FILE.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "5% errors, and 50% client errors, fire nothing" in result.stdout + result.stderr


def _seconds(duration: str) -> float:
    """A Prometheus duration with one unit ("5m") in seconds."""
    return float(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


def _shipped_rules() -> dict[str, str]:
    """Each alert's block of alerts.yml, by alert name."""
    blocks = re.split(r"^      - alert: ", RULES_FILE.read_text(), flags=re.MULTILINE)[1:]
    return {block.split("\n", 1)[0].strip(): block for block in blocks}


def test_the_server_evaluates_the_shipped_rules() -> None:
    shipped = _shipped_rules()
    assert set(shipped) == {rule.name for rule in RULES}
    for rule in RULES:
        block = shipped[rule.name]
        severity = re.search(r"^\s+severity: (\w+)$", block, re.MULTILINE)
        assert severity is not None and severity.group(1) == rule.severity, rule.name
        declared_for = re.search(r"^\s+for: (\w+)$", block, re.MULTILINE)
        for_s = _seconds(declared_for.group(1)) if declared_for else 0.0
        assert for_s == rule.for_s, rule.name
        thresholds = {float(t) for t in re.findall(r"\)\s*> ([0-9.]+)$", block, re.MULTILINE)}
        assert thresholds == {rule.threshold}, rule.name
        windows = set(re.findall(r"\[(\w+)\]|offset (\w+)", block))
        assert {_seconds(w or o) for w, o in windows} == {WINDOW_S}, rule.name
