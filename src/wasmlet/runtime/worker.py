"""The body of one worker process: receive a Job, run it, send back the Outcome.

Messages are pickled over a `multiprocessing` connection owned by the pool. The
worker ignores SIGINT (the server decides when workers stop) and exits on EOF.
"""

from __future__ import annotations

import pickle
import signal
import sys
from multiprocessing.connection import Connection

from wasmlet.runtime.executor import Executor
from wasmlet.runtime.outcome import HostCall, Job, Outcome, OutcomeKind

READY = b"ready"


def worker_main(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def call_host(call: HostCall) -> bytes:
        """Ask the server and wait for its answer (the guest is blocked meanwhile)."""
        conn.send_bytes(pickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL))
        return conn.recv_bytes()

    with Executor(limit_file_size=True, call_host=call_host) as executor:
        conn.send_bytes(READY)
        while True:
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                return
            job: Job = pickle.loads(data)
            try:
                outcome = executor.run(job)
            except Exception as exc:  # a host-side failure must not kill the worker
                outcome = Outcome(
                    OutcomeKind.RUNTIME_CRASH, message=f"runtime error: {type(exc).__name__}: {exc}"
                )
            try:
                conn.send_bytes(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
            except (BrokenPipeError, OSError):
                return


if __name__ == "__main__":
    worker_main(Connection(int(sys.argv[1])))
