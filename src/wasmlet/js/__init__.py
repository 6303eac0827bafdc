"""JavaScript functions: QuickJS in WebAssembly, packaged per function at deploy.

`engine` builds the engine from the PyPI QuickJS sources with zig; `package` turns a
function's source into a WASI command module with the engine initialised and the
function loaded (a memory snapshot, made by `snapshot`); the runtime then runs it
like any other module. See docs/javascript.md.
"""
