"""Turn the example guests into WebAssembly bytes for tests.

`wat` assembles WAT text (or `examples/wat/NAME.wat`) in-process. `build_c` compiles
`examples/c/NAME.c` (or any C file) with zig's clang for wasm32-wasi, the way the
guest ABI page tells users to, and caches the result on disk: the first build of a
flag set costs zig ~20 s to build wasi-libc, a cached one costs a file read.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import wasmtime

REPO_ROOT = Path(__file__).resolve().parents[2]
WAT_DIR = REPO_ROOT / "examples" / "wat"
C_DIR = REPO_ROOT / "examples" / "c"
GUEST_INCLUDE = REPO_ROOT / "src" / "wasmlet" / "guest"
C_FLAGS = ("-target", "wasm32-wasi", "-O2", "-s")
BUILD_TIMEOUT_S = 300

_BARE_NAME = re.compile(r"[A-Za-z0-9_-]+")

__all__ = ["C_DIR", "C_FLAGS", "WAT_DIR", "GuestBuildError", "build_c", "cache_dir", "wat"]


class GuestBuildError(RuntimeError):
    """A guest could not be built; the message carries the compiler's output."""


def cache_dir() -> Path:
    """Where built guests are kept between test runs."""
    return Path(tempfile.gettempdir()) / "wasmlet-test-build"


def wat(name_or_text: str) -> bytes:
    """Assemble `examples/wat/NAME.wat` when given a bare name, else the WAT text given."""
    if _BARE_NAME.fullmatch(name_or_text):
        path = WAT_DIR / f"{name_or_text}.wat"
        if not path.is_file():
            raise FileNotFoundError(f"no WAT example named {name_or_text!r} ({path})")
        text = path.read_text(encoding="utf-8")
    else:
        text = name_or_text
    return bytes(wasmtime.wat2wasm(text))


def build_c(name_or_path: str | Path) -> bytes:
    """Compile `examples/c/NAME.c` (or the C file at a path) into a wasm32-wasi module."""
    source = _c_source(name_or_path)
    command = [
        sys.executable,
        "-m",
        "ziglang",
        "cc",
        *C_FLAGS,
        "-I",
        str(GUEST_INCLUDE),
        str(source),
    ]
    target = cache_dir() / f"{_build_key(source)}.wasm"
    if target.is_file():
        return target.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    # One build of a target at a time across processes (parallel test workers): the
    # others wait for it and read its result instead of running zig again.
    with _locked(target.with_suffix(".lock")):
        if not target.is_file():
            _compile(command, source, target)
    return target.read_bytes()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _compile(command: list[str], source: Path, target: Path) -> None:
    # Build next to the target and rename, so parallel test runs never see half a file.
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".build-", suffix=".wasm")
    os.close(fd)
    try:
        try:
            done = subprocess.run(
                [*command, "-o", partial],
                capture_output=True,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise GuestBuildError(
                f"building {source} took more than {BUILD_TIMEOUT_S} s: {' '.join(command)}"
            ) from exc
        if done.returncode != 0:
            output = (done.stderr or done.stdout).decode("utf-8", "replace").strip()
            raise GuestBuildError(
                f"building {source} failed with exit code {done.returncode}\n"
                f"command: {' '.join(command)}\n{output}"
            )
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)


def _c_source(name_or_path: str | Path) -> Path:
    if isinstance(name_or_path, str) and _BARE_NAME.fullmatch(name_or_path):
        path = C_DIR / f"{name_or_path}.c"
    else:
        path = Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"no C source at {path}")
    return path.resolve()


def _build_key(source: Path) -> str:
    """Everything that decides the output: source, guest header, flags and zig's version."""
    digest = hashlib.sha256()
    for part in (
        source.read_bytes(),
        (GUEST_INCLUDE / "wasmlet.h").read_bytes(),
        " ".join(C_FLAGS).encode(),
        version("ziglang").encode(),
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()
