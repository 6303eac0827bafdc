"""Database-trigger delivery of wasmlet, on SQLite and on PostgreSQL, in one run.

    .venv/bin/python bench/bench_trigger.py [--quick] [--json PATH]
                                            [--backends sqlite,postgres] [--workers N]
                                            [--events N] [--interval-ms MS] [--batch N]
                                            [--poll-ms MS]

For each backend, a real `wasmlet serve` (SQLite in its data directory, or a throwaway
PostgreSQL database and app role) with bench/guest/record_start.c deployed as a
database-trigger function on INSERT into `bench_events`. The function reads the wall
clock first thing, then inserts (event id, record id, committed_at, its start time)
into `bench_seen` with one `db_query`. This process is the application: it writes the
application database directly (sqlite3, psycopg), as a user's app does.

1. latency: N single-row INSERT+COMMITs about `--interval-ms` apart (jittered +-25%,
   so that the arrivals do not lock onto the dispatcher's poll period); per event,
   function start (guest CLOCK_REALTIME) - the app's clock right after COMMIT returned
   (the headline), and function start - the event's committed_at (stamped by the
   capture trigger inside the transaction);
2. events/s: `--batch` rows in one transaction, then `--batch` single-row
   transactions; events / (last row recorded by the function - first COMMIT returned);
3. the floor: a bare single-row INSERT+COMMIT into a table without a trigger, plus a
   bare invocation of examples/wat/hello.wat over HTTP (POST /functions/v1/invoke, on
   the same server, keep-alive), measured in rounds alternating with those of 1; and,
   for reference, `Executor.run` on hello in this process.

The platform's job rows (relayed at, finished at) split the latency into stages.
Prints a table per backend and the aims; the last line of stdout is the whole report
as JSON. See bench/README.md for how to read it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:  # for tests.support, run as a script
    sys.path.insert(0, str(REPO_ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from tests.support.appdb import Backend, backend  # noqa: E402
from tests.support.build import build_c, wat  # noqa: E402

from bench_invoke import bench_job  # noqa: E402
from servers import cpu_of  # noqa: E402
from wasmlet.runtime.compiler import ModuleCompiler  # noqa: E402
from wasmlet.runtime.executor import Executor  # noqa: E402

GUEST_SOURCE = BENCH_DIR / "guest" / "record_start.c"
FUNCTION = "record_start"
EVENTS_TABLE = "bench_events"
SEEN_TABLE = "bench_seen"
FLOOR_TABLE = "bench_floor"
HELLO_PAYLOAD = b'{"name":"bench"}'
HELLO_OUTPUT = b"Hello, wasmlet!"
MB = 1024 * 1024
# Record ids of each phase, in disjoint ranges of bench_events.id.
WARMUP_BASE, PACED_BASE, BATCH_BASE, SINGLES_BASE = 900_000, 0, 100_000, 200_000
AIMS_MS = {"sqlite": 100.0, "postgres": 50.0}
HTTP_BASE = 500_000  # the rec_id of every HTTP invocation of the trigger function
HTTP_CONCURRENCY = 16
# Issue 18's aims, on both backends: (value key, bound, "min" or "max").
RATIO_AIMS = {
    "events_vs_http": (1.0, "min"),  # events/s (single-row transactions) / HTTP req/s at c=16
    "p50_vs_floor": (1.2, "max"),  # commit -> start p50 / floor
    "p99_vs_p50": (3.0, "max"),  # commit -> start p99 / p50
}
SEEN_POLL_S = 0.025
FLOOR_GAP_S = 0.005
ROUNDS = 5  # latency and floor alternate in this many rounds
JOBS_SETTLE_S = 10.0
UNSETTLED = frozenset({"queued", "running"})


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    events: int  # paced single-row commits for the latency phase
    interval_ms: float
    batch: int  # rows per throughput phase
    floor_calls: int  # bare INSERT+COMMITs and bare HTTP invocations
    direct_calls: int
    warmup: int
    wait_s: float  # the longest wait for deliveries after a phase
    idle_s: float  # how long the idle server's CPU is read


FULL = Profile("full", 200, 20.0, 1000, 200, 300, 20, 120.0, 3.0)
QUICK = Profile("quick", 40, 20.0, 200, 50, 100, 10, 60.0, 1.0)


@dataclass(frozen=True, slots=True)
class Seen:
    """One row the function wrote: what it got and when it started (epoch seconds)."""

    rec_id: int
    event_id: str
    committed_at: float
    started_at: float
    recorded_at: float


@dataclass(frozen=True, slots=True)
class Sent:
    """One single-row transaction of the app: before BEGIN, after COMMIT returned."""

    rec_id: int
    began_at: float
    returned_at: float


# -- statistics ---------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (the same rule as bench_invoke.py)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def stats_ms(seconds: Sequence[float]) -> dict[str, Any]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": pct(ms, 0.50),
        "p90_ms": pct(ms, 0.90),
        "p99_ms": pct(ms, 0.99),
        "max_ms": max(ms) if ms else None,
        "min_ms": min(ms) if ms else None,
        "mean_ms": sum(ms) / len(ms) if ms else None,
    }


# -- the application side, per database ---------------------------------------------


class App(ABC):
    """The user's application: a writer connection, a reader, and the dialect's SQL."""

    name: str
    placeholder: str

    @abstractmethod
    def ddl(self) -> list[str]: ...

    @abstractmethod
    def record_sql(self) -> str:
        """The function's statement: $1 the event JSON, $2 its start in microseconds."""

    @abstractmethod
    def _commit(self) -> None: ...

    @abstractmethod
    def _execute(self, sql: str, params: tuple[Any, ...]) -> None: ...

    @abstractmethod
    def _execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """On the second, autocommit connection (DDL and reads; never left in a transaction)."""

    @abstractmethod
    def jobs(self) -> dict[str, tuple[float, float | None, str, int]]:
        """The platform's job rows of the function: id -> created, finished, status, tries."""

    @abstractmethod
    def close(self) -> None: ...

    def _insert_sql(self, table: str) -> str:
        p = self.placeholder
        return f"INSERT INTO {table} (id, v) VALUES ({p}, {p})"

    def insert_one(self, table: str, rec_id: int) -> Sent:
        began = time.time()
        self._execute(self._insert_sql(table), (rec_id, f"row {rec_id}"))
        self._commit()
        return Sent(rec_id, began, time.time())

    def insert_batch(self, table: str, ids: range) -> Sent:
        """All of `ids` in one transaction; `rec_id` of the result is the first."""
        began = time.time()
        self._execute_many(self._insert_sql(table), [(i, f"row {i}") for i in ids])
        self._commit()
        return Sent(ids[0], began, time.time())

    def seen_count(self, ids: range) -> int:
        p = self.placeholder
        rows = self.query(
            f"SELECT COUNT(*) FROM {SEEN_TABLE} WHERE rec_id >= {p} AND rec_id < {p}",
            (ids.start, ids.stop),
        )
        return int(rows[0][0])

    def seen(self, ids: range) -> list[Seen]:
        p = self.placeholder
        rows = self.query(
            f"SELECT rec_id, event_id, committed_at, started_us, recorded_at FROM {SEEN_TABLE} "
            f"WHERE rec_id >= {p} AND rec_id < {p}",
            (ids.start, ids.stop),
        )
        return [Seen(int(r[0]), str(r[1]), float(r[2]), int(r[3]) / 1e6, float(r[4])) for r in rows]


class SqliteApp(App):
    name = "sqlite"
    placeholder = "?"

    def __init__(self, data_dir: Path) -> None:
        # Python's defaults, as an application gets them: a deferred transaction opened
        # by the INSERT, committed by commit(); the server set the file to WAL.
        self._writer = sqlite3.connect(data_dir / "app.db", timeout=30, check_same_thread=False)
        self._reader = sqlite3.connect(data_dir / "app.db", timeout=30, isolation_level=None)
        self._platform_path = data_dir / "platform.db"

    def ddl(self) -> list[str]:
        return [
            f"CREATE TABLE {EVENTS_TABLE} (id INTEGER PRIMARY KEY, v TEXT)",
            f"CREATE TABLE {FLOOR_TABLE} (id INTEGER PRIMARY KEY, v TEXT)",
            f"CREATE TABLE {SEEN_TABLE} (event_id TEXT NOT NULL, rec_id INTEGER NOT NULL, "
            "committed_at REAL NOT NULL, started_us INTEGER NOT NULL, recorded_at REAL NOT NULL "
            "DEFAULT ((julianday('now') - 2440587.5) * 86400.0))",
            f"CREATE INDEX {SEEN_TABLE}_rec ON {SEEN_TABLE} (rec_id)",
        ]

    def record_sql(self) -> str:
        return (
            f"INSERT INTO {SEEN_TABLE} (event_id, rec_id, committed_at, started_us) VALUES "
            "(json_extract($1, '$.id'), json_extract($1, '$.record.id'), "
            "json_extract($1, '$.committed_at'), $2)"
        )

    def _execute(self, sql: str, params: tuple[Any, ...]) -> None:
        self._writer.execute(sql, params)

    def _execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._writer.executemany(sql, rows)

    def _commit(self) -> None:
        self._writer.commit()

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._reader.execute(sql, params).fetchall()

    def jobs(self) -> dict[str, tuple[float, float | None, str, int]]:
        with contextlib.closing(
            sqlite3.connect(f"file:{self._platform_path}?mode=ro", uri=True, timeout=30)
        ) as conn:
            rows = conn.execute(
                "SELECT id, created_at, finished_at, status, attempts FROM jobs "
                "WHERE function_name = ?",
                (FUNCTION,),
            ).fetchall()
        return {r[0]: (float(r[1]), _opt_float(r[2]), str(r[3]), int(r[4])) for r in rows}

    def close(self) -> None:
        self._writer.close()
        self._reader.close()


class PostgresApp(App):
    name = "postgres"
    placeholder = "%s"

    def __init__(self, url: str) -> None:
        self._writer = psycopg.connect(url)  # commit by hand, as an application does
        self._reader = psycopg.connect(url, autocommit=True)

    def ddl(self) -> list[str]:
        return [
            f"CREATE TABLE {EVENTS_TABLE} (id INTEGER PRIMARY KEY, v TEXT)",
            f"CREATE TABLE {FLOOR_TABLE} (id INTEGER PRIMARY KEY, v TEXT)",
            f"CREATE TABLE {SEEN_TABLE} (event_id TEXT NOT NULL, rec_id INTEGER NOT NULL, "
            "committed_at DOUBLE PRECISION NOT NULL, started_us BIGINT NOT NULL, "
            "recorded_at DOUBLE PRECISION NOT NULL "
            "DEFAULT extract(epoch FROM clock_timestamp()))",
            f"CREATE INDEX {SEEN_TABLE}_rec ON {SEEN_TABLE} (rec_id)",
        ]

    def record_sql(self) -> str:
        return (
            f"INSERT INTO {SEEN_TABLE} (event_id, rec_id, committed_at, started_us) VALUES "
            "($1::jsonb->>'id', ($1::jsonb->'record'->>'id')::int, "
            "($1::jsonb->>'committed_at')::float8, $2::bigint)"
        )

    def _execute(self, sql: str, params: tuple[Any, ...]) -> None:
        self._writer.execute(sql, params)

    def _execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self._writer.cursor() as cursor:
            cursor.executemany(sql, rows)

    def _commit(self) -> None:
        self._writer.commit()

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = self._reader.execute(sql, params)
        return cursor.fetchall() if cursor.description else []

    def jobs(self) -> dict[str, tuple[float, float | None, str, int]]:
        rows = self.query(
            "SELECT id, created_at, finished_at, status, attempts FROM wasmlet.jobs "
            "WHERE function_name = %s",
            (FUNCTION,),
        )
        return {r[0]: (float(r[1]), _opt_float(r[2]), str(r[3]), int(r[4])) for r in rows}

    def close(self) -> None:
        self._writer.close()
        self._reader.close()


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


# -- phases -------------------------------------------------------------------------


def wait_seen(app: App, ids: range, timeout_s: float) -> tuple[int, float]:
    """Poll until every id in `ids` was recorded or `timeout_s`; (count, seconds waited)."""
    started = time.monotonic()
    deadline = started + timeout_s
    count = app.seen_count(ids)
    while count < len(ids) and time.monotonic() < deadline:
        time.sleep(SEEN_POLL_S)
        count = app.seen_count(ids)
    return count, time.monotonic() - started


def paced(app: App, ids: range, interval_s: float, rng: random.Random) -> list[Sent]:
    """One single-row transaction per id, `interval_s` apart on average (+-25%)."""
    sent: list[Sent] = []
    next_at = time.perf_counter()
    deadline = next_at + len(ids) * interval_s * 3 + 30  # a stalled database ends it
    for rec_id in ids:
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        sent.append(app.insert_one(EVENTS_TABLE, rec_id))
        next_at += interval_s * rng.uniform(0.75, 1.25)
        if time.perf_counter() > deadline:
            break
    return sent


def chunks(ids: range, parts: int) -> list[range]:
    """`ids` cut into `parts` contiguous ranges (the last ones may be empty)."""
    size = -(-len(ids) // parts)
    return [ids[i * size : (i + 1) * size] for i in range(parts)]


def measure_latency_and_floor(
    app: App, client: httpx.Client, profile: Profile, rng: random.Random
) -> tuple[dict[str, Any], dict[str, Any], list[Sent], list[Seen]]:
    """The paced commits and the floor, alternating in ROUNDS rounds.

    Each round: a share of the paced commits, a wait until they are all delivered (so
    that nothing overlaps), then a share of the bare INSERT+COMMITs and of the bare
    HTTP invocations. Drift on a shared machine then hits the latency and its floor
    alike.
    """
    ids = range(PACED_BASE + 1, PACED_BASE + 1 + profile.events)
    floor_ids = range(1, 1 + profile.floor_calls)
    sent: list[Sent] = []
    insert_floor: list[float] = []
    http_floor: list[float] = []
    http_errors = 0
    count = 0
    for part, floor_part in zip(chunks(ids, ROUNDS), chunks(floor_ids, ROUNDS), strict=True):
        sent += paced(app, part, profile.interval_ms / 1000, rng)
        count += wait_seen(app, part, profile.wait_s)[0]
        insert_floor += bare_inserts(app, floor_part)
        took, errors = bare_invocations(client, len(floor_part))
        http_floor += took
        http_errors += errors
    seen = {s.rec_id: s for s in app.seen(ids)}
    commit_return, committed_at, commit_time = [], [], []
    for s in sent:
        row = seen.get(s.rec_id)
        commit_time.append(s.returned_at - s.began_at)
        if row is not None:
            commit_return.append(row.started_at - s.returned_at)
            committed_at.append(row.started_at - row.committed_at)
    result = {
        "sent": len(sent),
        "delivered": count,
        "rows_seen": len(seen),
        "distinct_events": len({s.event_id for s in seen.values()}),
        "from_commit_return": stats_ms(commit_return),
        "from_committed_at": stats_ms(committed_at),
        "app_insert_commit": stats_ms(commit_time),
    }
    floor = {
        "insert_commit": stats_ms(insert_floor),
        "http_invoke": {**stats_ms(http_floor), "errors": http_errors},
    }
    return result, floor, sent, list(seen.values())


def stages(app: App, sent: list[Sent], seen: list[Seen]) -> dict[str, Any]:
    """Where the latency goes, from the platform's job rows (created = relayed)."""
    # The last function may have recorded its row and not yet been marked done.
    jobs = app.jobs()
    deadline = time.monotonic() + JOBS_SETTLE_S
    while time.monotonic() < deadline and any(j[2] in UNSETTLED for j in jobs.values()):
        time.sleep(SEEN_POLL_S)
        jobs = app.jobs()
    returned = {s.rec_id: s.returned_at for s in sent}
    parts: dict[str, list[float]] = {
        "in_txn_to_commit_return": [],  # committed_at -> the app's COMMIT returned
        "commit_return_to_relayed": [],  # wake-up (poll / NOTIFY) + outbox fetch
        "relayed_to_start": [],  # enqueue, outbox delete, claim, invoker, worker, instantiate
        "start_to_recorded": [],  # the guest's one db_query
        "recorded_to_job_done": [],  # return to the dispatcher, complete_job
    }
    for row in seen:
        job = jobs.get(row.event_id)
        if job is None or row.rec_id not in returned:
            continue
        relayed, finished = job[0], job[1]
        parts["in_txn_to_commit_return"].append(returned[row.rec_id] - row.committed_at)
        parts["commit_return_to_relayed"].append(relayed - returned[row.rec_id])
        parts["relayed_to_start"].append(row.started_at - relayed)
        parts["start_to_recorded"].append(row.recorded_at - row.started_at)
        if finished is not None:
            parts["recorded_to_job_done"].append(finished - row.recorded_at)
    statuses: dict[str, int] = {}
    retried = 0
    for _, _, status, attempts in jobs.values():
        statuses[status] = statuses.get(status, 0) + 1
        retried += attempts > 1
    return {
        "jobs": statuses,
        "retried": retried,
        "stages": {name: stats_ms(values) for name, values in parts.items()},
    }


def commit_singles(apps: list[App], ids: range, wait_s: float) -> list[Sent]:
    """One single-row transaction per id, from every app connection at once (the ids
    dealt round-robin); ordered by when each began."""
    deadline = time.monotonic() + wait_s
    sent: list[list[Sent]] = [[] for _ in apps]

    def writer(i: int) -> None:
        for rec_id in ids[i :: len(apps)]:
            sent[i].append(apps[i].insert_one(EVENTS_TABLE, rec_id))
            if time.monotonic() > deadline:
                break

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(apps))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted((s for part in sent for s in part), key=lambda s: s.began_at)


def measure_throughput(
    app: App, ids: range, one_transaction: bool, wait_s: float, writers: list[App] | None = None
) -> dict[str, Any]:
    if one_transaction:
        sent = [app.insert_batch(EVENTS_TABLE, ids)]
    else:
        sent = commit_singles(writers or [app], ids, wait_s)
    count, _ = wait_seen(app, ids, wait_s)
    seen = app.seen(ids)
    first_return = sent[0].returned_at
    app_s = max(x.returned_at for x in sent) - sent[0].began_at
    last_recorded = max((s.recorded_at for s in seen), default=None)
    elapsed = None if last_recorded is None else last_recorded - first_return
    last_returned = max(x.returned_at for x in sent)
    return {
        "mode": "1 transaction" if one_transaction else f"{len(ids)} transactions",
        "writers": 1 if one_transaction else len(writers or [app]),
        "events": len(ids),
        "committed": len(ids) if one_transaction else len(sent),
        "delivered": count,
        "distinct_events": len({s.event_id for s in seen}),
        "app_commit_s": app_s,
        "app_commits_per_s": None if one_transaction or app_s <= 0 else len(sent) / app_s,
        "first_commit_to_last_recorded_s": elapsed,
        "events_per_s": count / elapsed if elapsed and count else None,
        "last_commit_to_last_recorded_s": (
            None if last_recorded is None else last_recorded - last_returned
        ),
    }


def measure_http(b: Backend, requests: int, seconds: float) -> dict[str, Any]:
    """The trigger function itself over HTTP at c=16 (bench/loadgen.py, keep-alive), on the
    same server: the same guest and the same db_query per call as an event."""
    body = json.dumps({"id": "http", "record": {"id": HTTP_BASE}, "committed_at": 0})
    argv = [
        sys.executable, str(BENCH_DIR / "loadgen.py"), "--port", str(b.server.port),
        "--path", f"/functions/v1/invoke/{FUNCTION}", "--body", body,
        "--concurrency", str(HTTP_CONCURRENCY), "--requests", str(requests),
        "--seconds", str(seconds), "--warmup", str(4 * HTTP_CONCURRENCY),
        "--header", f"Authorization: Bearer {b.server.anon_key}",
        "--header", "Content-Type: application/json",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, check=False, timeout=3 * seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    raw = json.loads(done.stdout.decode().splitlines()[-1])
    latencies = [ns / 1e9 for ns in raw["latencies_ns"]]
    return {
        "concurrency": HTTP_CONCURRENCY,
        "sent": raw["sent"],
        "ok": raw["ok"],
        "statuses": raw["statuses"],
        "failures": raw["failures"],
        "elapsed_s": raw["elapsed_s"],
        "req_per_s": raw["ok"] / raw["elapsed_s"] if raw["elapsed_s"] else None,
        "latency": stats_ms(latencies),
    }


def bare_inserts(app: App, ids: range) -> list[float]:
    """Single-row INSERT+COMMITs into a table with no trigger, a few ms apart; seconds."""
    took = []
    deadline = time.monotonic() + 60
    for rec_id in ids:
        sent = app.insert_one(FLOOR_TABLE, rec_id)
        took.append(sent.returned_at - sent.began_at)
        if time.monotonic() > deadline:
            break
        time.sleep(FLOOR_GAP_S)
    return took


def bare_invocations(client: httpx.Client, calls: int) -> tuple[list[float], int]:
    """Sequential POST /functions/v1/invoke/hello on one keep-alive connection.

    Returns the seconds of each 200 with the expected body, and how many were not.
    """
    took: list[float] = []
    errors = 0
    deadline = time.monotonic() + 60
    for _ in range(calls):
        before = time.perf_counter()
        response = client.post("/functions/v1/invoke/hello", content=HELLO_PAYLOAD)
        after = time.perf_counter()
        if response.status_code != 200 or response.content != HELLO_OUTPUT:
            errors += 1
        else:
            took.append(after - before)
        if time.monotonic() > deadline:
            break
    return took, errors


def measure_idle_cpu(pid: int, seconds: float) -> float | None:
    """CPU of the server and its workers with nothing to do, as a share of one core."""
    before = cpu_of(pid)
    time.sleep(seconds)
    after = cpu_of(pid)
    if before is None or after is None:
        return None
    return (after.own_s + after.children_s - before.own_s - before.children_s) / seconds


def measure_direct(workdir: Path, wasm: bytes, calls: int) -> dict[str, Any]:
    """wasmlet's `Executor.run` on hello in this process: no HTTP, invoker or worker hop."""
    module = ModuleCompiler(workdir / "cache").compile(wasm)
    job = bench_job(module, HELLO_PAYLOAD)
    took = []
    with Executor() as executor:
        outcome = executor.run(job)
        if not outcome.ok or outcome.stdout != HELLO_OUTPUT:
            raise RuntimeError(f"direct run gave {outcome}")
        for _ in range(20):
            executor.run(job)
        deadline = time.monotonic() + 10
        for _ in range(calls):
            before = time.perf_counter()
            executor.run(job)
            took.append(time.perf_counter() - before)
            if time.monotonic() > deadline:
                break
    return stats_ms(took)


# -- one backend --------------------------------------------------------------------


def open_app(b: Backend) -> App:
    return SqliteApp(b.server.data_dir) if b.pg is None else PostgresApp(b.pg.url)


@contextlib.contextmanager
def opened_apps(b: Backend, count: int) -> Iterator[list[App]]:
    apps: list[App] = []
    try:
        for _ in range(count):
            apps.append(open_app(b))
        yield apps
    finally:
        for app in apps:
            app.close()


def run_backend(
    kind: str,
    workdir: Path,
    profile: Profile,
    workers: int,
    poll_ms: int | None,
    seed: int,
    app_writers: int,
    dispatch_concurrency: int | None = None,
) -> dict[str, Any]:
    env = {"WASMLET_WORKERS": str(workers)}
    if dispatch_concurrency is not None:
        env["WASMLET_DISPATCH_CONCURRENCY"] = str(dispatch_concurrency)
    if poll_ms is not None:
        env["WASMLET_DISPATCH_POLL_MS"] = str(poll_ms)
    rng = random.Random(seed)
    record_wasm, hello_wasm = build_c(GUEST_SOURCE), wat("hello")
    data_dir = workdir / kind
    data_dir.mkdir()
    with (
        backend(kind, data_dir, **env) as b,
        opened_apps(b, 1 + app_writers) as apps,
        httpx.Client(
            base_url=b.server.url,
            headers={
                "authorization": f"Bearer {b.server.anon_key}",
                "content-type": "application/json",
            },
            timeout=30,
        ) as client,
    ):
        app, writers = apps[0], apps[1:]
        # Tables after the server started: on PostgreSQL the app role's default
        # privileges cover tables created from then on.
        for statement in app.ddl():
            app.query(statement)
        _deploy(b, FUNCTION, record_wasm, app)
        _deploy(b, "hello", hello_wasm, None)

        if b.pg is not None:
            _progress(kind, f"throwaway database {b.pg.name}, app role {b.pg.role}")
        _progress(kind, "warm-up")
        warm = range(WARMUP_BASE + 1, WARMUP_BASE + 1 + profile.warmup)
        paced(app, warm, profile.interval_ms / 1000, rng)
        burst = range(warm.stop, warm.stop + profile.warmup)
        for rec_id in burst:
            app.insert_one(EVENTS_TABLE, rec_id)
        warmed, _ = wait_seen(app, range(warm.start, burst.stop), profile.wait_s)
        _, warm_errors = bare_invocations(client, profile.warmup)
        if warmed < 2 * profile.warmup or warm_errors:
            raise RuntimeError(
                f"{kind}: {warmed} of {2 * profile.warmup} warm-up events delivered, "
                f"{warm_errors} of {profile.warmup} hello invocations failed; "
                "server log tail:\n" + "\n".join(b.server.lines[-20:])
            )

        _progress(
            kind,
            f"latency: {profile.events} commits ~{profile.interval_ms:g} ms apart, and the "
            f"floor: {profile.floor_calls} bare INSERT+COMMITs and hello invocations, "
            f"in {ROUNDS} alternating rounds",
        )
        latency, floor, sent, seen = measure_latency_and_floor(app, client, profile, rng)
        _progress(kind, f"throughput: {profile.batch} rows in 1 transaction")
        batch = measure_throughput(
            app, range(BATCH_BASE + 1, BATCH_BASE + 1 + profile.batch), True, profile.wait_s
        )
        _progress(
            kind, f"throughput: {profile.batch} single-row transactions from {len(writers)} "
            "app connections",
        )  # fmt: skip
        singles = measure_throughput(
            app, range(SINGLES_BASE + 1, SINGLES_BASE + 1 + profile.batch), False,
            profile.wait_s, writers,
        )  # fmt: skip
        _progress(kind, f"HTTP: {profile.batch} invocations of {FUNCTION} at c={HTTP_CONCURRENCY}")
        http = measure_http(b, profile.batch, profile.wait_s / 4)
        breakdown = stages(app, sent, seen)
        _progress(kind, f"idle: server CPU over {profile.idle_s:g} s")
        assert b.server.process is not None
        idle_cpu = measure_idle_cpu(b.server.process.pid, profile.idle_s)
    return {
        "backend": kind,
        "workers": workers,
        "dispatch_poll_ms": poll_ms if poll_ms is not None else 20,
        "latency": latency,
        "breakdown": breakdown,
        "throughput": [batch, singles],
        "http": http,
        "floor": floor,
        "idle_cpu_share": idle_cpu,
    }


def _deploy(b: Backend, name: str, wasm: bytes, app: App | None) -> None:
    if app is None:
        response = b.server.deploy(name, wasm)
    else:
        response = b.server.deploy(
            name,
            wasm,
            {"env": {"RECORD_SQL": app.record_sql()}},
            [{"type": "database", "table": EVENTS_TABLE, "events": ["INSERT"]}],
        )
    if response.status_code not in (200, 201):
        raise RuntimeError(f"deploy {name} answered {response.status_code}: {response.text}")


def _progress(kind: str, what: str) -> None:
    print(f"[{kind}] {what}", file=sys.stderr, flush=True)


# -- report -------------------------------------------------------------------------


def summarize(result: dict[str, Any], direct: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one backend, and its aim."""
    latency = result["latency"]["from_commit_return"]
    floor_ms = _sum(
        result["floor"]["insert_commit"]["p50_ms"], result["floor"]["http_invoke"]["p50_ms"]
    )
    direct_floor = _sum(result["floor"]["insert_commit"]["p50_ms"], direct["p50_ms"])
    aim = AIMS_MS[result["backend"]]
    p50 = latency["p50_ms"]
    http_rps = result["http"]["req_per_s"]
    singles = result["throughput"][1]["events_per_s"]
    ratio = p50 / floor_ms if p50 is not None and floor_ms else None
    ratios = {
        "events_vs_http": singles / http_rps if singles and http_rps else None,
        "p50_vs_floor": ratio,
        "p99_vs_p50": latency["p99_ms"] / p50 if p50 and latency["p99_ms"] is not None else None,
    }
    aims = {}
    for key, (bound, kind) in RATIO_AIMS.items():
        value = ratios[key]
        met = None if value is None else (value >= bound if kind == "min" else value <= bound)
        aims[key] = {"value": value, "limit": bound, "kind": kind, "met": met}
    return {
        "backend": result["backend"],
        "p50_ms": p50,
        "p99_ms": latency["p99_ms"],
        "max_ms": latency["max_ms"],
        "committed_at_p50_ms": result["latency"]["from_committed_at"]["p50_ms"],
        "events_per_s_1tx": result["throughput"][0]["events_per_s"],
        "events_per_s_singles": result["throughput"][1]["events_per_s"],
        "http_req_per_s": http_rps,
        "floor_ms": floor_ms,
        "ratio": ratio,
        "aims": aims,
        "floor_direct_ms": direct_floor,
        "ratio_direct": p50 / direct_floor if p50 is not None and direct_floor else None,
        "aim_p50_ms": aim,
        "aim_met": None if p50 is None else p50 < aim,
    }


def _sum(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_backend(result: dict[str, Any]) -> None:
    lat = result["latency"]
    print(
        f"== {result['backend']}: {result['workers']} workers, dispatch poll "
        f"{result['dispatch_poll_ms']} ms; {lat['sent']} commits sent, {lat['delivered']} "
        f"delivered ({lat['distinct_events']} distinct events) =="
    )
    print(f"{'':<38}{'n':>6}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'min ms':>9}")
    rows = [
        ("start - app COMMIT returned (headline)", lat["from_commit_return"]),
        ("start - committed_at (in the txn)", lat["from_committed_at"]),
        ("app INSERT+COMMIT (with capture)", lat["app_insert_commit"]),
    ]
    breakdown = result["breakdown"]
    names = {
        "in_txn_to_commit_return": "  committed_at -> COMMIT returned",
        "commit_return_to_relayed": "  COMMIT returned -> relayed to jobs",
        "relayed_to_start": "  relayed -> function start",
        "start_to_recorded": "  start -> row recorded (db_query)",
        "recorded_to_job_done": "  recorded -> job done",
    }
    rows += [(names[key], stats) for key, stats in breakdown["stages"].items()]
    rows += [
        ("floor: bare INSERT+COMMIT", result["floor"]["insert_commit"]),
        ("floor: bare HTTP invoke (hello)", result["floor"]["http_invoke"]),
    ]
    for label, s in rows:
        print(
            f"{label:<38}{s['n']:>6}{_num(s['p50_ms'], '.2f'):>9}{_num(s['p90_ms'], '.2f'):>9}"
            f"{_num(s['p99_ms'], '.2f'):>9}{_num(s['max_ms'], '.2f'):>9}"
            f"{_num(s['min_ms'], '.2f'):>9}"
        )
    print(
        f"jobs of all phases: {breakdown['jobs']}, retried {breakdown['retried']}; idle server "
        f"CPU (server + workers) {_num(result['idle_cpu_share'], '.1%')} of a core"
    )
    print(
        f"{'throughput':<24}{'events':>7}{'delivered':>10}{'app s':>8}{'app tx/s':>9}"
        f"{'drain s':>9}{'events/s':>10}"
    )
    for t in result["throughput"]:
        print(
            f"{t['mode']:<24}{t['events']:>7}{t['delivered']:>10}{t['app_commit_s']:>8.2f}"
            f"{_num(t['app_commits_per_s'], '.0f'):>9}"
            f"{_num(t['first_commit_to_last_recorded_s'], '.2f'):>9}"
            f"{_num(t['events_per_s'], '.0f'):>10}"
            f"   ({t['writers']} app connection(s))"
        )
    h = result["http"]
    print(
        f"{'HTTP c=' + str(h['concurrency']) + ' (same function)':<24}{h['sent']:>7}"
        f"{h['ok']:>10}{'':>8}{'':>9}{h['elapsed_s']:>9.2f}{_num(h['req_per_s'], '.0f'):>10}"
        f"   p50 {_num(h['latency']['p50_ms'], '.1f')} ms, statuses {h['statuses']}"
    )
    print()


def print_summary(summaries: list[dict[str, Any]], direct: dict[str, Any]) -> None:
    print(
        f"{'backend':<10}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'ev/s 1tx':>10}"
        f"{'ev/s 1/tx':>10}{'floor ms':>10}{'ratio':>7}   aim"
    )
    for s in summaries:
        verdict = {True: "met", False: "MISSED", None: "n/a"}[s["aim_met"]]
        print(
            f"{s['backend']:<10}{_num(s['p50_ms'], '.1f'):>8}{_num(s['p99_ms'], '.1f'):>8}"
            f"{_num(s['max_ms'], '.1f'):>8}{_num(s['events_per_s_1tx'], '.0f'):>10}"
            f"{_num(s['events_per_s_singles'], '.0f'):>10}{_num(s['floor_ms'], '.2f'):>10}"
            f"{_num(s['ratio'], '.1f'):>7}   p50 < {s['aim_p50_ms']:g} ms {verdict}"
        )
    print(
        f"floor = bare INSERT+COMMIT p50 + bare HTTP invoke p50; in-process Executor.run p50 "
        f"{_num(direct['p50_ms'], '.3f')} ms"
    )
    print()
    print("issue 18 aims (ratios within one run):")
    labels = {
        "events_vs_http": "events/s (single-row txns) / HTTP req/s c=16",
        "p50_vs_floor": "commit -> start p50 / floor",
        "p99_vs_p50": "commit -> start p99 / p50",
    }
    for s in summaries:
        for key, aim in s["aims"].items():
            sign = ">=" if aim["kind"] == "min" else "<="
            verdict = {True: "met", False: "MISSED", None: "n/a"}[aim["met"]]
            print(
                f"  {s['backend']:<9}{labels[key]:<48}{_num(aim['value'], '.2f'):>7}"
                f"   aim {sign} {aim['limit']:g}  {verdict}"
            )


# -- main ---------------------------------------------------------------------------


def _exit_on_sigterm(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


def _clean_environment() -> None:
    """The servers get only the settings given here (the PG admin URL stays)."""
    for key in [k for k in os.environ if k.startswith("WASMLET_")]:
        if key != "WASMLET_TEST_PG_URL":
            del os.environ[key]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budgets, for a smoke run")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    parser.add_argument("--backends", default="sqlite,postgres", help="[sqlite,postgres]")
    parser.add_argument("--workers", type=int, default=2, help="wasmlet worker processes [2]")
    parser.add_argument("--events", type=int, help="paced commits for latency [200; quick 40]")
    parser.add_argument("--interval-ms", type=float, help="mean gap between them [20]")
    parser.add_argument("--batch", type=int, help="rows per throughput phase [1000; quick 200]")
    parser.add_argument("--poll-ms", type=int, help="WASMLET_DISPATCH_POLL_MS [server default 20]")
    parser.add_argument("--seed", type=int, default=1, help="seed of the interval jitter [1]")
    parser.add_argument(
        "--dispatch-concurrency", type=int,
        help="WASMLET_DISPATCH_CONCURRENCY [server default: twice the workers]",
    )  # fmt: skip
    parser.add_argument(
        "--app-writers", type=int, default=4,
        help="app connections committing the single-row transactions at once [4]",
    )  # fmt: skip
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    profile = Profile(
        profile.name,
        max(1, min(args.events or profile.events, 50_000)),
        max(1.0, args.interval_ms or profile.interval_ms),
        max(1, min(args.batch or profile.batch, 50_000)),
        profile.floor_calls,
        profile.direct_calls,
        profile.warmup,
        profile.wait_s,
        profile.idle_s,
    )
    kinds = [k.strip() for k in args.backends.split(",") if k.strip()]
    unknown = set(kinds) - set(AIMS_MS)
    if unknown or not kinds:
        parser.error(f"unknown backends {sorted(unknown)}; use sqlite and/or postgres")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _clean_environment()

    results = []
    with tempfile.TemporaryDirectory(prefix="wasmlet-bench-trigger-") as tmp:
        workdir = Path(tmp)
        _progress("direct", f"Executor.run on hello, {profile.direct_calls} calls")
        direct = measure_direct(workdir, wat("hello"), profile.direct_calls)
        for kind in kinds:
            results.append(
                run_backend(
                    kind,
                    workdir,
                    profile,
                    args.workers,
                    args.poll_ms,
                    args.seed,
                    args.app_writers,
                    args.dispatch_concurrency,
                )
            )

    summaries = [summarize(r, direct) for r in results]
    for result in results:
        print_backend(result)
    print_summary(summaries, direct)
    report = {
        "profile": asdict(profile),
        "cpus": os.cpu_count(),
        "direct_executor": direct,
        "backends": results,
        "summary": summaries,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
