"""What a function's SQL may do on the SQLite application database.

Three layers on every connection functions use, each an allow-list:

- SQLite's own limits (`GUEST_LIMITS`, and the length of any value capped at the result
  cap per query), so no statement makes the server allocate more than that.
- An authorizer that lets through only the SQL functions in `ALLOWED_FUNCTIONS`, the
  table-valued functions in `ALLOWED_MODULES`, and no access at all to the platform's
  objects (`_wasmlet_*`), SQLite's schema and statistics tables, `ANALYZE`, `ATTACH`,
  transaction control or any pragma but a few read-only ones about one's own tables.
- Every function the connection knows that is not on the list is replaced by one that
  fails: the authorizer never sees the functions of a column's DEFAULT expression.

The authorizer cannot see the new name of `ALTER TABLE ... RENAME TO`; the database
checks the platform's namespace after any schema change, before it commits.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from enum import Enum

from wasmlet.appdb.base import MAX_SQL_BYTES, TRIGGER_PREFIX

GUEST_LIMITS = {
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: MAX_SQL_BYTES,
    sqlite3.SQLITE_LIMIT_ATTACHED: 0,
    sqlite3.SQLITE_LIMIT_COLUMN: 256,
    sqlite3.SQLITE_LIMIT_EXPR_DEPTH: 100,
    sqlite3.SQLITE_LIMIT_COMPOUND_SELECT: 50,
    sqlite3.SQLITE_LIMIT_VDBE_OP: 1_000_000,
    # The platform's capture triggers build json_object(name, value, ...) over every column.
    sqlite3.SQLITE_LIMIT_FUNCTION_ARG: 127,
    sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: 10_000,
    sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER: 999,
    sqlite3.SQLITE_LIMIT_TRIGGER_DEPTH: 16,
}

SAFE_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
)

ALLOWED_FUNCTIONS = frozenset(
    {
        # core scalar
        "abs", "char", "coalesce", "concat", "concat_ws", "format", "glob", "hex", "ifnull",
        "iif", "instr", "length", "like", "likelihood", "likely", "lower", "ltrim", "max",
        "min", "nullif", "octet_length", "printf", "quote", "random", "randomblob", "replace",
        "round", "rtrim", "sign", "soundex", "substr", "substring", "trim", "typeof",
        "unhex", "unicode", "unlikely", "upper", "zeroblob",
        # aggregate
        "avg", "count", "group_concat", "string_agg", "sum", "total",
        # window
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag",
        "lead", "first_value", "last_value", "nth_value",
        # date and time
        "date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff",
        "current_date", "current_time", "current_timestamp",
        # math
        "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos",
        "cosh", "degrees", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow",
        "power", "radians", "sin", "sinh", "sqrt", "tan", "tanh", "trunc",
        # json
        "json", "json_array", "json_array_length", "json_extract", "json_insert",
        "json_object", "json_patch", "json_quote", "json_remove", "json_replace", "json_set",
        "json_type", "json_valid", "json_group_array", "json_group_object", "->", "->>",
    }
)  # fmt: skip
"""Functions guests may call. Left out on purpose, among others: `fts3_tokenizer` (reads and
plants C pointers), `load_extension`, the fts3/fts5/rtree helpers, `sqlite_*` (build facts),
and `changes`/`total_changes`/`last_insert_rowid`, which on a connection shared by every
function would report another function's statement (use `RETURNING`)."""

ALTER_FUNCTIONS = frozenset(
    {
        "sqlite_rename_table", "sqlite_rename_test", "sqlite_rename_column",
        "sqlite_rename_quotefix", "sqlite_drop_column",
    }
)  # fmt: skip
"""SQLite's internal helpers for ALTER TABLE: allowed inside an ALTER TABLE only."""

ALLOWED_MODULES = frozenset({"json_each", "json_tree"})
"""Virtual-table modules guests may use (as table-valued functions; neither can be created).
No fts3/fts4 (their tokenizer interface takes C pointers from SQL), no fts5 or rtree: without
SQLITE_DBCONFIG_DEFENSIVE, which Python 3.11 cannot set, their shadow tables are writable
and their C code would parse whatever a function writes there. No dbstat, sqlite_stmt."""

SCHEMA_TABLES = frozenset(
    {
        "sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema",
        "sqlite_sequence", "sqlite_stat1", "sqlite_stat2", "sqlite_stat3", "sqlite_stat4",
    }
)  # fmt: skip
_SCHEMA_LISTS = frozenset({"sqlite_master", "sqlite_temp_master"})
_DROPS = frozenset(
    {
        sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_DROP_INDEX, sqlite3.SQLITE_DROP_VIEW,
        sqlite3.SQLITE_DROP_TRIGGER, sqlite3.SQLITE_DROP_TEMP_TABLE,
        sqlite3.SQLITE_DROP_TEMP_INDEX, sqlite3.SQLITE_DROP_TEMP_VIEW,
        sqlite3.SQLITE_DROP_TEMP_TRIGGER,
    }
)  # fmt: skip
_TABLE_ACCESS = frozenset(
    {sqlite3.SQLITE_READ, sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}
)
_NAMED_ACTIONS = _TABLE_ACCESS | _DROPS | frozenset(
    {
        sqlite3.SQLITE_CREATE_TABLE, sqlite3.SQLITE_ALTER_TABLE, sqlite3.SQLITE_CREATE_INDEX,
        sqlite3.SQLITE_CREATE_TRIGGER, sqlite3.SQLITE_CREATE_VIEW,
        sqlite3.SQLITE_CREATE_TEMP_TABLE, sqlite3.SQLITE_CREATE_TEMP_TRIGGER,
        sqlite3.SQLITE_CREATE_TEMP_INDEX, sqlite3.SQLITE_CREATE_TEMP_VIEW,
        sqlite3.SQLITE_CREATE_VTABLE, sqlite3.SQLITE_DROP_VTABLE,
    }
)  # fmt: skip
_NEVER = frozenset(
    {
        sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH, sqlite3.SQLITE_ANALYZE,
        sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT,
    }
)  # fmt: skip
OK, DENY = sqlite3.SQLITE_OK, sqlite3.SQLITE_DENY


class Statement(Enum):
    """What SQLite's own nested statements may touch while it compiles the guest's."""

    OTHER = "other"
    ALTER = "alter"  # ALTER TABLE rewrites the schema table's SQL: no user query inside
    DROP = "drop"  # DROP ... deletes schema, sequence and statistics rows: no user query


def is_platform_name(name: str | None) -> bool:
    return name is not None and name.lower().startswith(TRIGGER_PREFIX)


def _names_platform_object(name: str | None) -> bool:
    """A platform table or trigger, or the index SQLite made for a platform table."""
    lowered = (name or "").lower()
    return is_platform_name(lowered) or lowered.startswith("sqlite_autoindex_" + TRIGGER_PREFIX)


class GuestAuthorizer:
    """The authorizer of a function's connection; `begin()` before each statement.

    `modules` are the virtual-table modules the connection knows: reading one that is not
    allowed (dbstat, sqlite_stmt, fts3tokenize, ...) is refused. Dropping a table drops its
    triggers, ours included: allowed within the statement that drops the table, never as a
    `DROP TRIGGER` of its own. While `platform` is set the platform itself is at work.
    """

    def __init__(self, modules: frozenset[str]) -> None:
        self.refused_modules = modules - ALLOWED_MODULES
        self.platform = False
        self.refused = False
        """Whether anything of the current statement was refused: the error is `forbidden`."""
        self.statement = Statement.OTHER
        self.dropping: set[str] = set()
        self._previous: tuple[int, str] = (0, "")

    def begin(self) -> None:
        self.refused = False
        self.statement = Statement.OTHER
        self.dropping.clear()
        self._previous = (0, "")

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, _db: str | None, trigger: str | None
    ) -> int:
        if self.platform:
            return OK
        verdict = self._decide(action, arg1, arg2, trigger)
        self._previous = (action, (arg1 or "").lower())
        self.refused = self.refused or verdict == DENY
        return verdict

    def _decide(self, action: int, arg1: str | None, arg2: str | None, trigger: str | None) -> int:
        if action in _NEVER:
            return DENY
        if action == sqlite3.SQLITE_PRAGMA:
            safe = arg1 is not None and arg1.lower() in SAFE_PRAGMAS
            return OK if safe and not _names_platform_object(arg2) else DENY
        if action == sqlite3.SQLITE_FUNCTION:
            name = (arg2 or "").lower()
            alter = self.statement is Statement.ALTER and name in ALTER_FUNCTIONS
            return OK if name in ALLOWED_FUNCTIONS or alter else DENY
        vtable = action in (sqlite3.SQLITE_CREATE_VTABLE, sqlite3.SQLITE_DROP_VTABLE)
        if vtable and (arg2 or "").lower() not in ALLOWED_MODULES:
            return DENY
        if action == sqlite3.SQLITE_ALTER_TABLE:
            self.statement = Statement.ALTER
        elif action in _DROPS:
            self.statement = Statement.DROP
            if action == sqlite3.SQLITE_DROP_TABLE and arg1 is not None:
                self.dropping.add(arg1.lower())
        if action in _TABLE_ACCESS:
            table = (arg1 or "").lower()
            if table in SCHEMA_TABLES:
                return self._schema_access(action, table, arg2, trigger)
            if action == sqlite3.SQLITE_READ and table in self.refused_modules:
                return DENY
        return self._platform_objects(action, arg1, arg2, trigger)

    def _schema_access(
        self, action: int, table: str, column: str | None, trigger: str | None
    ) -> int:
        """Only SQLite's own nested statements reach the schema tables.

        DROP and ALTER TABLE hold no query of the guest's; CREATE writes the schema table
        and reads back the ROWID of the row it just updated.
        """
        if trigger is not None:
            return DENY
        if self.statement is not Statement.OTHER:
            return OK
        if table in _SCHEMA_LISTS:
            if action != sqlite3.SQLITE_READ:
                return OK  # SQLite itself refuses a guest's write to its schema table
            if column == "ROWID" and self._previous == (sqlite3.SQLITE_UPDATE, table):
                return OK
        return DENY

    def _platform_objects(
        self, action: int, arg1: str | None, arg2: str | None, trigger: str | None
    ) -> int:
        if action not in _NAMED_ACTIONS or not (is_platform_name(arg1) or is_platform_name(arg2)):
            return OK
        if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_READ) and is_platform_name(trigger):
            return OK  # the platform's own capture trigger at work
        if action == sqlite3.SQLITE_DROP_TRIGGER and (arg2 or "").lower() in self.dropping:
            return OK
        return DENY


def _refusal(authorizer: GuestAuthorizer) -> Callable[..., None]:
    def refuse(*_args: object) -> None:
        authorizer.refused = True
        raise sqlite3.OperationalError("function not allowed")

    return refuse


def harden(conn: sqlite3.Connection) -> GuestAuthorizer:
    """Limits, function replacements and the authorizer, before a guest's first statement."""
    for category, value in GUEST_LIMITS.items():
        conn.setlimit(category, value)
    modules = frozenset(row[0].lower() for row in conn.execute("PRAGMA module_list"))
    authorizer = GuestAuthorizer(modules)
    functions = conn.execute("SELECT DISTINCT name, narg FROM pragma_function_list").fetchall()
    for name, args in functions:
        if name.lower() not in ALLOWED_FUNCTIONS:
            conn.create_function(name, args, _refusal(authorizer))
    conn.set_authorizer(authorizer)
    return authorizer
