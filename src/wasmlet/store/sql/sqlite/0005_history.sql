-- Invocation history and function logs (issue 6). One row per invocation (sync or
-- async, refused ones too when they name a function) and one per log line, each with
-- a sequence number: the order lines were written, the cursor of `wasmlet logs
-- --follow`, and what retention drops first. Both are pruned per function by count
-- and by age (observability/history.py).
CREATE TABLE invocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    function_name TEXT NOT NULL,
    version INTEGER,
    trigger_kind TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status INTEGER NOT NULL,
    error_type TEXT,
    error_message TEXT,
    duration_ms REAL NOT NULL,
    started_at REAL NOT NULL,
    log_lines INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX invocations_function ON invocations (function_name, seq);
CREATE INDEX invocations_started ON invocations (started_at);
CREATE INDEX invocations_id ON invocations (id);

CREATE TABLE function_logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    function_name TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at REAL NOT NULL,
    severity INTEGER NOT NULL,
    level TEXT NOT NULL,
    source TEXT NOT NULL,
    message TEXT NOT NULL
);

CREATE INDEX function_logs_function ON function_logs (function_name, seq);
CREATE INDEX function_logs_at ON function_logs (at);
CREATE INDEX function_logs_invocation ON function_logs (invocation_id);
