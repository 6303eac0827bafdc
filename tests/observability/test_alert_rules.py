"""The shipped Prometheus rules: `promtool check rules`, `promtool test rules`, and the
same names, severities, thresholds, windows and `for` durations as the in-server rules
(the spec's three function alerts and the platform's six).

promtool comes from the Debian package `prometheus` (`.ci/run` installs it). A missing
promtool fails these tests rather than skipping them: the rules must be checked in CI.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from wasmlet.observability.alert_rules import ALL_RULES, AlertRule

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
    assert f"SUCCESS: {len(ALL_RULES)} rules found" in result.stdout


def test_promtool_test_rules(promtool: str) -> None:
    result = run(promtool, "test", "rules", TESTS_FILE.name, cwd=RULES_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("shipped", "broken", "failing_test"),
    [
        ("> 0.1\n", "> 0.01\n", "5% errors, and 50% client errors, fire nothing"),
        ("> 2.5\n", "> 1.5\n", "three worker restarts on a node fire WARNING, two do not"),
        (
            "max(functions_queue_oldest_age_seconds) > 300",
            "max(functions_queue_oldest_age_seconds) > 200",
            "a due job waiting over 300 s fires WARNING until it starts",
        ),
        ("max by (name) (functions_circuit_state) > 0", "max by (name) "
         "(functions_circuit_state) > 1", "a breaker not closed on any node fires WARNING"),
    ],
)  # fmt: skip
def test_promtool_tests_catch_a_wrong_threshold(
    promtool: str, tmp_path: Path, shipped: str, broken: str, failing_test: str
) -> None:
    """The unit tests are not vacuous: a wrong threshold fails them."""
    rules = RULES_FILE.read_text()
    assert rules.count(shipped) == 1
    (tmp_path / RULES_FILE.name).write_text(rules.replace(shipped, broken))
    shutil.copy(TESTS_FILE, tmp_path / TESTS_FILE.name)
    result = run(promtool, "test", "rules", TESTS_FILE.name, cwd=tmp_path)
    assert result.returncode != 0
    assert failing_test in result.stdout + result.stderr


def _seconds(duration: str) -> float:
    """A Prometheus duration with one unit ("5m") in seconds."""
    return float(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


def _shipped_rules() -> dict[str, str]:
    """Each alert's block of alerts.yml without comment lines, by alert name."""
    text = "\n".join(
        line for line in RULES_FILE.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    blocks = re.split(r"^      - alert: ", text, flags=re.MULTILINE)[1:]
    return {block.split("\n", 1)[0].strip(): block for block in blocks}


def _declared_for(block: str) -> float:
    declared = re.search(r"^\s+for: (\w+)$", block, re.MULTILINE)
    return _seconds(declared.group(1)) if declared else 0.0


def _check_shape(rule: AlertRule, block: str) -> None:
    thresholds = {float(t) for t in re.findall(r"\)\s*> ([0-9.]+)$", block, re.MULTILINE)}
    windows = {_seconds(w or o) for w, o in re.findall(r"\[(\w+)\]|offset (\w+)", block)}
    if rule.name == "NodeSilent":
        # Prometheus sees a silent node as `up == 0` held for the rule's `for`; the
        # server as a heartbeat older than its threshold.
        assert 'up{job="wasmlet"} == 0' in block
        assert (_declared_for(block), rule.for_s, thresholds) == (rule.threshold, 0.0, set())
        return
    assert _declared_for(block) == rule.for_s, rule.name
    assert thresholds == {rule.threshold}, rule.name
    assert windows == ({rule.window_s} if rule.window_s is not None else set()), rule.name


def test_the_server_evaluates_the_shipped_rules() -> None:
    shipped = _shipped_rules()
    assert list(shipped) == [rule.name for rule in ALL_RULES]
    for rule in ALL_RULES:
        block = shipped[rule.name]
        severity = re.search(r"^\s+severity: (\w+)$", block, re.MULTILINE)
        assert severity is not None and severity.group(1) == rule.severity, rule.name
        _check_shape(rule, block)
