-- Several nodes on one database (issue 11): nodes list themselves, and a function's
-- circuit breaker is one state shared by every node.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    workers INTEGER NOT NULL,
    workers_alive INTEGER NOT NULL,
    in_flight INTEGER NOT NULL
);

-- One row per function whose breaker has ever moved (no row: closed).
-- Calls that ended before `counts_since` (the last open or close) do not count.
CREATE TABLE function_breakers (
    function_name TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('closed', 'open', 'half_open')),
    counts_since REAL NOT NULL,
    open_until REAL NOT NULL DEFAULT 0,
    probe_node TEXT,
    probe_until REAL NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL
);

-- Calls and failures per function and whole second, summed over every node.
CREATE TABLE breaker_counts (
    function_name TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (function_name, bucket)
);
