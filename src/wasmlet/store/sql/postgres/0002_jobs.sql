CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    function_name TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    payload BYTEA NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    run_at DOUBLE PRECISION NOT NULL,
    locked_by TEXT,
    locked_until DOUBLE PRECISION,
    last_error_type TEXT,
    last_error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    first_failed_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION
);

CREATE INDEX jobs_due ON jobs (status, run_at);
CREATE INDEX jobs_function ON jobs (function_name, status);

-- Change capture for database triggers: the same transaction as the change writes
-- one row per (change, function). SECURITY DEFINER: the application's role has no
-- rights on this schema, the function's owner (the platform) has.
CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    function_name TEXT NOT NULL,
    op TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    record JSONB,
    old_record JSONB,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE FUNCTION capture_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO outbox (event_id, function_name, op, schema_name, table_name, record,
                        old_record, created_at)
    VALUES (gen_random_uuid()::text, TG_ARGV[0], TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME,
            CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE to_jsonb(NEW) END,
            CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE to_jsonb(OLD) END,
            extract(epoch FROM clock_timestamp()));
    PERFORM pg_notify('wasmlet_outbox_' || current_schema(), '');
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION capture_change() FROM PUBLIC;
