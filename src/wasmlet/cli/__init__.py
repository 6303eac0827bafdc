"""The `wasmlet` command."""
