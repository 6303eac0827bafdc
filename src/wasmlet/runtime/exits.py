"""WASI `proc_exit`, defined by the platform so that every exit status is reported.

wasmtime's own `proc_exit` accepts statuses 0 to 125 only and turns any other (as
`proc_exit(-1)`) into an error that does not carry the status. This one stops the
guest with `GuestExit(status)` for every status: raised in a host function, the
exception stops the guest and is re-raised by the call that entered it.
"""

from __future__ import annotations

import wasmtime

WASI_MODULE = "wasi_snapshot_preview1"


class GuestExit(Exception):
    """The guest called `proc_exit(code)`."""

    def __init__(self, code: int) -> None:
        super().__init__(f"exited with code {code}")
        self.code = code


def define_proc_exit(linker: wasmtime.Linker) -> None:
    """Replace the `proc_exit` of a linker on which `define_wasi` was called."""

    def proc_exit(code: int) -> None:
        raise GuestExit(code)

    linker.allow_shadowing = True
    try:
        linker.define_func(
            WASI_MODULE, "proc_exit", wasmtime.FuncType([wasmtime.ValType.i32()], []), proc_exit
        )
    finally:
        linker.allow_shadowing = False
