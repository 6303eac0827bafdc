"""wasmlet: self-hosted serverless WebAssembly functions."""

__version__ = "0.1.0"
