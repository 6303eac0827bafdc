-- PostgreSQL versions of shared queries, where several nodes need row locks.

-- name: announce_function_change
-- Delivered to every listening node when the surrounding transaction commits.
SELECT pg_notify(:channel, :name);

-- name: claim_jobs
UPDATE jobs
SET status = 'running', locked_by = :node, locked_until = :until,
    attempts = attempts + 1, updated_at = :now
WHERE id IN (
    SELECT id FROM jobs WHERE status = 'queued' AND run_at <= :now
    ORDER BY run_at, created_at LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
RETURNING id, function_name, trigger_kind, payload, request_meta, attempts, created_at;
