"""The JavaScript engine: QuickJS built for wasm32-wasi with wasmlet's glue, on demand.

Nothing prebuilt is shipped or downloaded from outside the package registries. The
QuickJS C sources come from the PyPI source distribution of `quickjs` (fetched once
with `pip download`, checked against a pinned SHA-256); zig's clang (PyPI
`ziglang`) compiles them with `c/compat.h` and links them with `c/wasmlet_js.c`.

The result is cached on disk under a key made of everything that decides it (the
sdist's hash, the glue and compat sources, the patch, the flags and zig's version),
in `$WASMLET_JS_CACHE_DIR`, else `$XDG_CACHE_HOME/wasmlet/js`, else
`~/.cache/wasmlet/js`. A build takes about 20 s the first time (zig builds
wasi-libc once into its own cache); every later use is a file read. Concurrent
builders (server workers, parallel test runs) serialise on a lock file.

Build it ahead of time (an install step) with `python -m wasmlet.js.engine`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

QUICKJS_SDIST = "quickjs==1.19.4"
QUICKJS_SDIST_FILE = "quickjs-1.19.4.tar.gz"
QUICKJS_SDIST_SHA256 = "1205953abc24ff757f4a795304d5d61e4bf1e555c9ef6ec96a132d4b95535484"
QUICKJS_VERSION = "2021-03-27"
QUICKJS_SOURCES = ("quickjs.c", "libregexp.c", "libunicode.c", "cutils.c", "libbf.c")
QUICKJS_DIR = "upstream-quickjs"

GLUE_DIR = Path(__file__).parent / "c"
GLUE_SOURCE = GLUE_DIR / "wasmlet_js.c"
COMPAT_HEADER = GLUE_DIR / "compat.h"

COMPILE_FLAGS = (
    "-target", "wasm32-wasi", "-O2", "-fno-strict-aliasing",
    "-D_GNU_SOURCE", f'-DCONFIG_VERSION="{QUICKJS_VERSION}"', "-DCONFIG_BIGNUM",
    "-Wno-implicit-const-int-float-conversion", "-Wno-unused-but-set-variable",
)  # fmt: skip
LINK_FLAGS = ("-target", "wasm32-wasi", "-s", "-Wl,-z,stack-size=1048576")
BUILD_TIMEOUT_S = 600
DOWNLOAD_TIMEOUT_S = 300

# The one change to QuickJS itself: js_parse_error reports where the token that
# failed starts, so a syntax error can be given with its column as well as its line.
_PATCH_ANCHOR = (
    "    build_backtrace(ctx, ctx->rt->current_exception, s->filename, s->line_num,\n"
    "                    backtrace_flags);\n"
    "    return -1;\n"
)
_PATCH_WITH = (
    "    build_backtrace(ctx, ctx->rt->current_exception, s->filename, s->line_num,\n"
    "                    backtrace_flags);\n"
    "    wasmlet_js_parse_error_at(s->token.ptr, s->token.line_num);\n"
    "    return -1;\n"
)
PATCH_LEVEL = 1


class EngineBuildError(RuntimeError):
    """The JavaScript engine could not be built; the message says which step failed."""


@dataclass(frozen=True, slots=True)
class EngineBuild:
    key: str
    path: Path


def default_cache_dir() -> Path:
    explicit = os.environ.get("WASMLET_JS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wasmlet" / "js"


def build_key() -> str:
    """Names a build: everything that decides the output bytes."""
    digest = hashlib.sha256()
    for part in (
        QUICKJS_SDIST_SHA256.encode(),
        GLUE_SOURCE.read_bytes(),
        COMPAT_HEADER.read_bytes(),
        _PATCH_WITH.encode(),
        str(PATCH_LEVEL).encode(),
        " ".join(COMPILE_FLAGS).encode(),
        " ".join(LINK_FLAGS).encode(),
        version("ziglang").encode(),
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:24]


def ensure_engine(cache_dir: Path | None = None) -> EngineBuild:
    """The engine modules for this source tree, built now if they are not cached."""
    root = cache_dir or default_cache_dir()
    key = build_key()
    target = root / key
    build = EngineBuild(key, target / "engine.wasm")
    if build.path.is_file():
        return build
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{key}.lock"):
        if build.path.is_file():
            return build
        sdist = _fetch_sdist(root / "sdist")
        with tempfile.TemporaryDirectory(prefix="wasmlet-js-build-") as tmp:
            work = Path(tmp)
            source_dir = _extract(sdist, work / "src")
            _build(source_dir, work)
            staged = root / f".{key}.partial"
            shutil.rmtree(staged, ignore_errors=True)
            staged.mkdir()
            shutil.copy2(work / "engine.wasm", staged / "engine.wasm")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staged, target)
    return build


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fetch_sdist(directory: Path) -> Path:
    """The pinned `quickjs` sdist, downloaded with pip on first use and verified."""
    path = directory / QUICKJS_SDIST_FILE
    if path.is_file() and _sha256(path) == QUICKJS_SDIST_SHA256:
        return path
    directory.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--no-binary", ":all:", "--dest", str(directory),
        QUICKJS_SDIST,
    ]  # fmt: skip
    done = _run(command, "downloading the QuickJS sources", DOWNLOAD_TIMEOUT_S)
    if not path.is_file():
        raise EngineBuildError(
            f"downloading the QuickJS sources: pip left no {QUICKJS_SDIST_FILE} in "
            f"{directory}\n{done}"
        )
    actual = _sha256(path)
    if actual != QUICKJS_SDIST_SHA256:
        path.unlink()
        raise EngineBuildError(
            f"downloading the QuickJS sources: {QUICKJS_SDIST_FILE} has SHA-256 {actual}, "
            f"expected {QUICKJS_SDIST_SHA256}"
        )
    return path


def _extract(sdist: Path, into: Path) -> Path:
    """The upstream C sources from the sdist, with the parse-error patch applied."""
    into.mkdir(parents=True)
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive.getmembers():
            parts = Path(member.name).parts
            if len(parts) == 3 and parts[1] == QUICKJS_DIR and member.isfile():
                name = parts[2]
                if name.endswith((".c", ".h")):
                    handle = archive.extractfile(member)
                    assert handle is not None
                    (into / name).write_bytes(handle.read())
    missing = [name for name in QUICKJS_SOURCES if not (into / name).is_file()]
    if missing:
        raise EngineBuildError(f"the QuickJS sdist lacks {', '.join(missing)}")
    quickjs = into / "quickjs.c"
    text = quickjs.read_text("utf-8")
    if text.count(_PATCH_ANCHOR) != 1:
        raise EngineBuildError("quickjs.c does not match the expected source (patch anchor)")
    quickjs.write_text(text.replace(_PATCH_ANCHOR, _PATCH_WITH), "utf-8")
    return into


def _zig_cc(*args: str) -> list[str]:
    return [sys.executable, "-m", "ziglang", "cc", *args]


def _build(source_dir: Path, work: Path) -> None:
    include = ("-include", str(COMPAT_HEADER), "-I", str(source_dir))
    jobs: list[tuple[list[str], str]] = []
    objects: list[str] = []
    for name in QUICKJS_SOURCES:
        obj = str(work / f"{name}.o")
        objects.append(obj)
        jobs.append(
            (_zig_cc(*COMPILE_FLAGS, *include, "-c", str(source_dir / name), "-o", obj), name)
        )
    glue = str(work / "wasmlet_js.o")
    jobs.append(
        (_zig_cc(*COMPILE_FLAGS, *include, "-c", str(GLUE_SOURCE), "-o", glue), "wasmlet_js.c")
    )
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        for future in [pool.submit(_run, cmd, f"compiling {what}") for cmd, what in jobs]:
            future.result()
    output = str(work / "engine.wasm")
    _run(_zig_cc(*LINK_FLAGS, *objects, glue, "-o", output), "linking the engine")


def _run(command: Sequence[str], what: str, timeout: float = BUILD_TIMEOUT_S) -> str:
    try:
        done = subprocess.run(
            list(command),
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise EngineBuildError(f"{what}: took more than {timeout:g} s") from exc
    except OSError as exc:
        raise EngineBuildError(f"{what}: {exc}") from exc
    output = (done.stderr + done.stdout).decode("utf-8", "replace").strip()
    if done.returncode != 0:
        raise EngineBuildError(
            f"{what} failed (exit code {done.returncode})\n"
            f"command: {' '.join(command)}\n{output[-4000:]}"
        )
    return output


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    """`python -m wasmlet.js.engine`: build (or find) the engine and print where it is."""
    print(ensure_engine().path)


if __name__ == "__main__":
    main()
