"""Deploying JavaScript: from a deploy request's fields to the module the registry stores.

The deploy route reads `runtime` (`"wasm"`, the default, or `"javascript"`) and, for
JavaScript, the `source` text (JSON) or file (multipart); a `.ts` / `.mts` file name
(`filename`, or the uploaded file's) makes it TypeScript. `package_fields` turns the
source into a WASI module with `wasmlet.js.package`, under the function's memory and
timeout limits and for its triggers (this deploy's, else the previous version's, as
the registry keeps them), and puts the module where the WebAssembly bytes go.
"""

from __future__ import annotations

from typing import Any

from wasmlet.api.services import Services
from wasmlet.errors import InvalidPayload, InvalidSource, quoted
from wasmlet.js.package import clean_filename

RUNTIMES = ("wasm", "javascript")
MB = 1024 * 1024


def runtime_of(raw: object, has_source: bool, has_wasm: bool) -> str:
    """The deploy's runtime: as given, else JavaScript when only a source was sent."""
    if raw is None or raw == "":
        return "javascript" if has_source and not has_wasm else "wasm"
    if raw not in RUNTIMES:
        raise InvalidPayload(
            f"Malformed deploy request: unknown runtime {quoted(raw, 40)} "
            f"(expected one of {', '.join(RUNTIMES)})"
        )
    return str(raw)


def source_text(raw: object) -> str:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidSource("Invalid JavaScript: the source is not UTF-8 text") from exc
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidSource("Invalid JavaScript: 'source' must be the function's source text")
    return raw


def package_fields(services: Services, fields: dict[str, Any]) -> bytes:
    """The module for a JavaScript deploy (run in a worker thread: it compiles and runs)."""
    settings = services.settings
    config, triggers = services.registry.effective(
        fields["name"], fields["config"], fields["triggers"]
    )
    memory_mb = min(config.memory_mb or settings.default_memory_mb, settings.max_memory_mb)
    timeout_ms = min(config.timeout_ms or settings.default_timeout_ms, settings.max_timeout_ms)
    packaged = services.javascript().package(
        fields["source"],
        filename=clean_filename(fields.get("filename")),
        triggers=triggers,
        memory_limit_bytes=memory_mb * MB,
        timeout_ms=timeout_ms,
    )
    return packaged.wasm
