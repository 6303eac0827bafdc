-- Order per row (issue 18): a job keeps its row's key and the outbox sequence number, and it
-- is claimed only once no earlier job of the same key is still queued or running.
ALTER TABLE jobs ADD COLUMN order_key TEXT;
ALTER TABLE jobs ADD COLUMN order_seq INTEGER;
CREATE INDEX jobs_order ON jobs (order_key, order_seq)
    WHERE order_key IS NOT NULL AND status IN ('queued', 'running');
