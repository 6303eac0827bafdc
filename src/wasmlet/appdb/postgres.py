"""The application database on PostgreSQL.

Functions connect as their own role (default `wasmlet_app`), which has rights on the
application's schema (`public`) and none on the platform schema. The platform
creates the role on start when no `WASMLET_APP_DATABASE_URL` is given. Capture
triggers call the platform's `capture_change()`, a SECURITY DEFINER function that
writes the outbox in the same transaction as the change.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from wasmlet.appdb.base import (
    TRIGGER_PREFIX,
    AppDatabase,
    OutboxEvent,
    QueryError,
    QueryErrorType,
    TableRef,
    check_sql_size,
    encode_rows,
    function_trigger_prefix,
    row_count,
    trigger_name,
)
from wasmlet.store.postgres import setup_lock

CONNECT_TIMEOUT_S = 2
ADMIN_IDLE_CHECK_S = 2.0
APP_SCHEMA = "public"


class PostgresAppDatabase(AppDatabase):
    dialect = "postgres"
    default_schema = APP_SCHEMA

    def __init__(
        self,
        platform_url: str,
        *,
        schema: str = "wasmlet",
        app_url: str | None = None,
        app_role: str = "wasmlet_app",
    ) -> None:
        self.schema = schema
        self.channel = f"wasmlet_outbox_{schema}"
        self._platform_url = platform_url
        self._admin_lock = threading.Lock()
        self._admin = self._connect_admin()
        self._admin_used = time.monotonic()
        if app_url is None:
            self._provision_role(app_role)
            app_url = make_conninfo(platform_url, user=app_role, password="")
        self._app_url = app_url
        self._local = threading.local()
        self._guest_conns: list[psycopg.Connection[Any]] = []

    def _connect_admin(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self._platform_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        )
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        return conn

    def _admin_conn(self) -> psycopg.Connection[Any]:
        """The platform connection, checked with a ping when it sat idle: a connection
        cut meanwhile is only known broken once used, and it is used rarely (deploys;
        the dispatcher relays through the platform store)."""
        if not (self._admin.closed or self._admin.broken):
            if time.monotonic() - self._admin_used < ADMIN_IDLE_CHECK_S:
                self._admin_used = time.monotonic()
                return self._admin
            with contextlib.suppress(psycopg.OperationalError):
                self._admin.execute("SELECT 1")
        if self._admin.closed or self._admin.broken:
            self._admin.close()
            self._admin = self._connect_admin()
        self._admin_used = time.monotonic()
        return self._admin

    def _provision_role(self, role: str) -> None:
        with self._admin_lock:
            conn = self._admin_conn()
            with setup_lock(conn):
                exists = conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", [role]
                ).fetchone()
                if not exists:
                    # Roles belong to the server, not the database: another database's
                    # nodes may create the same name between the check and here.
                    with contextlib.suppress(psycopg.errors.DuplicateObject):
                        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
                for statement in self._role_grants(role):
                    conn.execute(statement)

    def _role_grants(self, role: str) -> list[sql.Composed]:
        database = conninfo_to_dict(self._platform_url).get("dbname") or "postgres"
        ident = sql.Identifier(role)
        return [
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(str(database)), ident
            ),
            sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(self.schema)),
            sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(ident),
            sql.SQL("GRANT ALL ON ALL TABLES IN SCHEMA public TO {}").format(ident),
            sql.SQL("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {}").format(ident),
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO {}").format(
                ident
            ),
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO {}"
            ).format(ident),
        ]

    def _guest_connection(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            try:
                conn = psycopg.connect(
                    self._app_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                )
            except psycopg.OperationalError as exc:
                raise QueryError(QueryErrorType.DB_UNAVAILABLE, _first_line(exc)) from exc
            self._local.conn = conn
            with self._admin_lock:
                self._guest_conns.append(conn)
        return conn

    def query(self, sql_text: str, params: list[Any], deadline: float, max_bytes: int) -> bytes:
        check_sql_size(sql_text)
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            raise QueryError(QueryErrorType.TIMEOUT, "no time left for the query")
        conn = self._guest_connection()
        try:
            with conn.transaction():
                conn.execute(
                    "SELECT set_config('statement_timeout', %s, true)", [str(remaining_ms)]
                )
                cursor = psycopg.RawCursor(conn)
                cursor.execute(sql_text, [_adapt(p) for p in params], prepare=True)
                columns = [c.name for c in cursor.description] if cursor.description else []
                rows = cursor.fetchall() if columns else []
                count = row_count(cursor.rowcount, rows)
            return encode_rows(columns, rows, count, max_bytes)
        except psycopg.errors.QueryCanceled as exc:
            raise QueryError(QueryErrorType.TIMEOUT, "query ran past the function's time") from exc
        except psycopg.errors.InsufficientPrivilege as exc:
            raise QueryError(QueryErrorType.FORBIDDEN, _first_line(exc)) from exc
        except psycopg.OperationalError as exc:
            if conn.broken or conn.closed:
                raise QueryError(QueryErrorType.DB_UNAVAILABLE, _first_line(exc)) from exc
            raise QueryError(QueryErrorType.QUERY_ERROR, _first_line(exc)) from exc
        except (psycopg.Error, TypeError, ValueError) as exc:
            if conn.broken or conn.closed:
                raise QueryError(QueryErrorType.DB_UNAVAILABLE, _first_line(exc)) from exc
            raise QueryError(QueryErrorType.QUERY_ERROR, _first_line(exc)) from exc

    def table_exists(self, ref: TableRef) -> bool:
        with self._admin_lock:
            row = (
                self._admin_conn()
                .execute(
                    "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s",
                    [ref.schema, ref.table],
                )
                .fetchone()
            )
        return row is not None and ref.schema != self.schema

    def install_trigger(self, function: str, ref: TableRef, events: list[str]) -> None:
        with self._admin_lock:
            self._create_trigger(self._admin_conn(), function, ref, events)

    def replace_triggers(self, function: str, wanted: list[tuple[TableRef, list[str]]]) -> None:
        prefix = function_trigger_prefix(function)
        found = [t for t in self._triggers() if t[0].startswith(prefix)]
        with self._admin_lock:
            conn = self._admin_conn()
            with conn.transaction():  # DDL is transactional in PostgreSQL
                for name, schema, table in found:
                    conn.execute(_drop_trigger(name, schema, table))
                for ref, events in wanted:
                    self._create_trigger(conn, function, ref, events)

    def _create_trigger(
        self, conn: psycopg.Connection[Any], function: str, ref: TableRef, events: list[str]
    ) -> None:
        """The trigger's arguments: the function, then the table's primary key columns
        (the row's name for order per row; none without a primary key)."""
        key = [
            row[0]
            for row in conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
                "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                "WHERE i.indrelid = %s::regclass AND i.indisprimary "
                "ORDER BY array_position(i.indkey, a.attnum)",
                [
                    sql.SQL("{}.{}")
                    .format(sql.Identifier(ref.schema), sql.Identifier(ref.table))
                    .as_string(conn)
                ],
            ).fetchall()
        ]
        statement = sql.SQL(
            "CREATE TRIGGER {name} AFTER {events} ON {schema}.{table} "
            "FOR EACH ROW EXECUTE FUNCTION {platform}.capture_change({arguments})"
        ).format(
            name=sql.Identifier(trigger_name(function, ref)),
            events=sql.SQL(" OR ").join(sql.SQL(e) for e in events),
            schema=sql.Identifier(ref.schema),
            table=sql.Identifier(ref.table),
            platform=sql.Identifier(self.schema),
            arguments=sql.SQL(", ").join(sql.Literal(a) for a in [function, *key]),
        )
        conn.execute(statement)

    def _triggers(self) -> list[tuple[str, str, str]]:
        with self._admin_lock:
            rows = (
                self._admin_conn()
                .execute(
                    "SELECT t.tgname, n.nspname, c.relname FROM pg_trigger t "
                    "JOIN pg_class c ON c.oid = t.tgrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE t.tgname LIKE %s ESCAPE '\\' AND NOT t.tgisinternal",
                    [TRIGGER_PREFIX.replace("_", "\\_") + "%"],
                )
                .fetchall()
            )
        return [(row[0], row[1], row[2]) for row in rows]

    def trigger_names(self) -> list[str]:
        return sorted(name for name, _, _ in self._triggers())

    def drop_triggers(self, function: str) -> int:
        prefix = function_trigger_prefix(function)
        found = [t for t in self._triggers() if t[0].startswith(prefix)]
        with self._admin_lock:
            conn = self._admin_conn()
            for name, schema, table in found:
                conn.execute(_drop_trigger(name, schema, table))
        return len(found)

    def fetch_outbox(self, limit: int) -> list[OutboxEvent]:
        with self._admin_lock:
            rows = (
                self._admin_conn()
                .execute(
                    "SELECT seq, event_id, function_name, op, schema_name, table_name, record, "
                    "old_record, created_at, row_key FROM outbox ORDER BY seq LIMIT %s",
                    [limit],
                )
                .fetchall()
            )
        return [OutboxEvent(*row) for row in rows]

    def delete_outbox(self, seqs: list[int]) -> None:
        if seqs:
            with self._admin_lock:
                self._admin_conn().execute("DELETE FROM outbox WHERE seq = ANY(%s)", [seqs])

    def close(self) -> None:
        with self._admin_lock:
            self._admin.close()
            for conn in self._guest_conns:
                conn.close()


def _drop_trigger(name: str, schema: str, table: str) -> sql.Composed:
    return sql.SQL("DROP TRIGGER IF EXISTS {} ON {}.{}").format(
        sql.Identifier(name), sql.Identifier(schema), sql.Identifier(table)
    )


def _adapt(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict) else value


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
