-- Order per row (issue 18): the capture trigger names the changed row (its primary key,
-- baked into the trigger's arguments at install), and a job keeps that key and the
-- outbox sequence number; a job is claimed only once no earlier job of the same key
-- (same function, same row) is still queued or running.
ALTER TABLE outbox ADD COLUMN row_key TEXT;
ALTER TABLE jobs ADD COLUMN order_key TEXT;
ALTER TABLE jobs ADD COLUMN order_seq BIGINT;
CREATE INDEX jobs_order ON jobs (order_key, order_seq)
    WHERE order_key IS NOT NULL AND status IN ('queued', 'running');

CREATE OR REPLACE FUNCTION capture_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    new_row jsonb;
    old_row jsonb;
    row_key text;
BEGIN
    IF TG_OP <> 'DELETE' THEN
        new_row := to_jsonb(NEW);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        old_row := to_jsonb(OLD);
    END IF;
    IF TG_NARGS > 1 THEN  -- the primary key's columns follow the function's name
        SELECT TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME || ' '
               || jsonb_agg(COALESCE(new_row, old_row) -> k ORDER BY n)::text
          INTO row_key
          FROM unnest(TG_ARGV[1:TG_NARGS - 1]) WITH ORDINALITY AS t(k, n);
    END IF;
    INSERT INTO outbox (event_id, function_name, op, schema_name, table_name, record,
                        old_record, created_at, row_key)
    VALUES (gen_random_uuid()::text, TG_ARGV[0], TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME,
            new_row, old_row, extract(epoch FROM clock_timestamp()), row_key);
    PERFORM pg_notify('wasmlet_outbox_' || current_schema(), '');
    RETURN NULL;
END
$$;
