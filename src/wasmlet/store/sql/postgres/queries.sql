-- PostgreSQL versions of shared queries, where several nodes need row locks.

-- name: announce_function_change
-- Delivered to every listening node when the surrounding transaction commits.
SELECT pg_notify(:channel, :name);

-- name: relay_outbox
-- Captured changes into the job queue in one statement: one round trip, and the outbox
-- rows go in the same transaction as their jobs. The payload is triggers/database.py's
-- (OutboxEvent.payload) built here, and so is the order key (`order_key` there). Plain
-- FOR UPDATE, not SKIP LOCKED: a relay on another node waits for this one rather than
-- taking a later change of the same row first.
WITH moved AS (
    DELETE FROM outbox
    WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT :limit FOR UPDATE)
    RETURNING seq, event_id, function_name, op, schema_name, table_name, record, old_record,
              created_at, row_key
), queued AS (
    INSERT INTO jobs (id, function_name, trigger_kind, payload, request_meta, status,
                      attempts, run_at, created_at, updated_at, order_key, order_seq)
    SELECT event_id, function_name, 'database',
           convert_to(json_build_object(
               'id', event_id, 'type', op, 'table', table_name, 'schema', schema_name,
               'record', record, 'old_record', old_record, 'committed_at', created_at
           )::text, 'UTF8'),
           NULL, 'queued', 0, :now, :now, :now,
           CASE WHEN row_key IS NOT NULL THEN left(encode(sha256(convert_to(
               function_name || E'\n' || row_key, 'UTF8')), 'hex'), 32) END,
           CASE WHEN row_key IS NOT NULL THEN seq END
    FROM moved
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM moved) AS moved;

-- name: claim_jobs
-- Two nodes never get the same row: SKIP LOCKED passes over rows another claim holds,
-- and the UPDATE re-checks `status = 'queued'` on the row it locked. The pick is a
-- materialized CTE: as `id IN (subquery)` the planner may run it more than once.
WITH picked AS MATERIALIZED (
    SELECT j.id FROM jobs j WHERE j.status = 'queued' AND j.run_at <= :now
      AND j.function_name NOT IN (SELECT jsonb_array_elements_text(CAST(:skip AS jsonb)))
      AND (j.order_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM jobs p WHERE p.order_key = j.order_key AND p.order_seq < j.order_seq
            AND p.status IN ('queued', 'running')))
    ORDER BY j.run_at, j.created_at, j.order_seq LIMIT :limit
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE jobs
SET status = 'running', locked_by = :node, locked_until = :until,
    attempts = jobs.attempts + 1, updated_at = :now
FROM picked
WHERE jobs.id = picked.id AND jobs.status = 'queued'
RETURNING jobs.id, jobs.function_name, jobs.trigger_kind, jobs.payload, jobs.request_meta,
          jobs.attempts, jobs.created_at;

-- name: claim_jobs_capped
-- Two nodes never get the same row: SKIP LOCKED passes over rows another claim holds,
-- and the UPDATE re-checks `status = 'queued'` on the row it locked. The picks are
-- materialized CTEs: as `id IN (subquery)` the planner may run them more than once.
-- A function in :caps (name -> free slots) gets at most that many; the others share
-- :limit. Rows locked by a pick and not taken are free again when the statement ends.
WITH free AS MATERIALIZED (
    SELECT j.id, j.run_at, j.created_at, j.order_seq FROM jobs j
    WHERE j.status = 'queued' AND j.run_at <= :now
      AND j.function_name NOT IN (SELECT jsonb_array_elements_text(CAST(:skip AS jsonb)))
      AND j.function_name NOT IN (SELECT jsonb_object_keys(CAST(:caps AS jsonb)))
      AND (j.order_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM jobs p WHERE p.order_key = j.order_key AND p.order_seq < j.order_seq
            AND p.status IN ('queued', 'running')))
    ORDER BY j.run_at, j.created_at, j.order_seq LIMIT :limit
    FOR UPDATE OF j SKIP LOCKED
), capped AS MATERIALIZED (
    SELECT l.id, l.run_at, l.created_at, l.order_seq
    FROM jsonb_each_text(CAST(:caps AS jsonb)) AS c(name, room)
    CROSS JOIN LATERAL (
        SELECT j.id, j.run_at, j.created_at, j.order_seq FROM jobs j
        WHERE j.function_name = c.name AND j.status = 'queued' AND j.run_at <= :now
          AND (j.order_key IS NULL OR NOT EXISTS (
              SELECT 1 FROM jobs p WHERE p.order_key = j.order_key
                AND p.order_seq < j.order_seq AND p.status IN ('queued', 'running')))
        ORDER BY j.run_at, j.created_at, j.order_seq LIMIT CAST(c.room AS integer)
        FOR UPDATE OF j SKIP LOCKED
    ) AS l
), picked AS MATERIALIZED (
    SELECT id FROM (SELECT * FROM free UNION ALL SELECT * FROM capped) AS u
    ORDER BY run_at, created_at, order_seq LIMIT :limit
)
UPDATE jobs
SET status = 'running', locked_by = :node, locked_until = :until,
    attempts = jobs.attempts + 1, updated_at = :now
FROM picked
WHERE jobs.id = picked.id AND jobs.status = 'queued'
RETURNING jobs.id, jobs.function_name, jobs.trigger_kind, jobs.payload, jobs.request_meta,
          jobs.attempts, jobs.created_at;

-- name: next_due_claimable
SELECT MIN(j.run_at) AS run_at FROM jobs j
WHERE j.status = 'queued'
  AND j.function_name NOT IN (SELECT jsonb_array_elements_text(CAST(:skip AS jsonb)))
  AND (j.order_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM jobs p WHERE p.order_key = j.order_key AND p.order_seq < j.order_seq
        AND p.status IN ('queued', 'running')));

-- name: prune_done_jobs
DELETE FROM jobs
WHERE id IN (SELECT id FROM jobs WHERE status = 'done' AND finished_at < :cutoff
             ORDER BY finished_at LIMIT :limit
             FOR UPDATE SKIP LOCKED);

-- name: function_timeline
-- CAST to an integer rounds on PostgreSQL: FLOOR keeps each invocation in its minute.
SELECT CAST(FLOOR(started_at / 60) AS BIGINT) AS minute, error_type, COUNT(*) AS n
FROM invocations
WHERE function_name = :function_name AND started_at >= :since
GROUP BY CAST(FLOOR(started_at / 60) AS BIGINT), error_type
ORDER BY minute;
