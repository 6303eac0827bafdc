"""F2, the HTTP floor: a bare Starlette app that runs the F1 path inline.

No FastAPI, no middleware, no auth, no pool: one route whose handler reads the body
and runs the module on the event loop's thread. Served by uvicorn in one process
with the same uvicorn options as `wasmlet serve`, so what wasmlet adds over this is
its API layer, its invoker and its worker hop.

    python bench/bare_app.py --port 8790 --module PATH.cwasm
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from floor import FloorRunner

INVOKE_PATH = "/functions/v1/invoke/hello"


def create_app(module_path: str) -> Starlette:
    runner = FloorRunner(module_path)

    async def invoke(request: Request) -> Response:
        return Response(runner.run(await request.body()), media_type="text/plain")

    return Starlette(routes=[Route(INVOKE_PATH, invoke, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--module", required=True, help="compiled module (.cwasm)")
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.module),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
