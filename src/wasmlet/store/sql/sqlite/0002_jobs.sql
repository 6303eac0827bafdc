CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    function_name TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    run_at REAL NOT NULL,
    locked_by TEXT,
    locked_until REAL,
    last_error_type TEXT,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    first_failed_at REAL,
    finished_at REAL
);

CREATE INDEX jobs_due ON jobs (status, run_at);
CREATE INDEX jobs_function ON jobs (function_name, status);
