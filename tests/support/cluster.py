"""Several real `wasmlet serve` nodes on one throwaway PostgreSQL database.

Each node has its own data directory (its own compiled-module cache) and the same keys,
as a team would run them behind a load balancer. `through_proxy=True` puts a `TcpProxy`
between every node and PostgreSQL, so a test can cut the database away for real.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.support.postgres import PgDatabase, fresh_database
from tests.support.server import ServerProcess
from tests.support.tcp_proxy import TcpProxy


@dataclass
class Cluster:
    nodes: list[ServerProcess]
    pg: PgDatabase
    proxy: TcpProxy | None

    def __getitem__(self, index: int) -> ServerProcess:
        return self.nodes[index]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@contextmanager
def cluster(
    tmp_path: Path,
    size: int = 3,
    *,
    through_proxy: bool = False,
    staggered: bool = False,
    per_node: Sequence[Mapping[str, str]] = (),
    **env: str,
) -> Iterator[Cluster]:
    """`size` nodes started at the same moment on one new, empty database.

    `staggered=True` starts them one after another instead, each once the previous one
    is healthy (for tests of something other than a concurrent start). `per_node[i]`
    adds settings of node i alone.
    """
    keys = {
        "WASMLET_SERVICE_KEY": "service-" + secrets.token_hex(16),
        "WASMLET_ANON_KEY": "anon-" + secrets.token_hex(16),
    }
    with fresh_database() as pg:
        proxy: TcpProxy | None = None
        url = pg.url
        if through_proxy:
            parts = urlsplit(pg.url)
            proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
            proxy.start()
            url = _via(pg.url, proxy.port)
        node_env = {
            "WASMLET_WORKERS": "2",
            "WASMLET_DATABASE_URL": url,
            "WASMLET_APP_ROLE": pg.role,
            **keys,
            **env,
        }
        extra = [*per_node, *([{}] * size)][:size]
        nodes = [
            ServerProcess(tmp_path / f"node{i}", {**node_env, **extra[i]}) for i in range(size)
        ]
        try:
            if staggered:
                for node in nodes:
                    node.start()
            else:
                with ThreadPoolExecutor(size) as pool:
                    for started in [pool.submit(node.start) for node in nodes]:
                        started.result()
            yield Cluster(nodes, pg, proxy)
        finally:
            for node in nodes:
                node.stop()
            if proxy is not None:
                proxy.close()
