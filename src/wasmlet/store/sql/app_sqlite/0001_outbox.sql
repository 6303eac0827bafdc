CREATE TABLE _wasmlet_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    function_name TEXT NOT NULL,
    op TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    record TEXT,
    old_record TEXT,
    created_at REAL NOT NULL
)
