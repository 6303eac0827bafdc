"""JavaScript functions in tests: the examples' sources and a deploy helper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.server import ServerProcess

JS_DIR = Path(__file__).resolve().parents[2] / "examples" / "js"

__all__ = ["JS_DIR", "deploy_js", "example"]


def example(name: str) -> str:
    """The source of `examples/js/NAME.js`."""
    path = JS_DIR / f"{name}.js"
    if not path.is_file():
        raise FileNotFoundError(f"no JavaScript example named {name!r} ({path})")
    return path.read_text(encoding="utf-8")


def deploy_js(
    server: ServerProcess,
    name: str,
    source: str,
    config: dict[str, Any] | None = None,
    triggers: list[dict[str, Any]] | None = None,
    *,
    filename: str | None = None,
) -> httpx.Response:
    """POST /functions/v1/deploy with JavaScript source (JSON body)."""
    body: dict[str, Any] = {"name": name, "runtime": "javascript", "source": source}
    if config is not None:
        body["config"] = config
    if triggers is not None:
        body["triggers"] = triggers
    if filename is not None:
        body["filename"] = filename
    return server.post_deploy(body, timeout_s=120)
