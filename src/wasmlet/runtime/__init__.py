"""The WebAssembly runtime: engine, compiled-module cache, limits, worker processes."""
