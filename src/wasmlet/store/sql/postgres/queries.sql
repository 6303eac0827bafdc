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
      AND function_name NOT IN (SELECT jsonb_array_elements_text(CAST(:skip AS jsonb)))
    ORDER BY run_at, created_at LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
RETURNING id, function_name, trigger_kind, payload, request_meta, attempts, created_at;

-- name: next_due_claimable
SELECT MIN(run_at) AS run_at FROM jobs
WHERE status = 'queued'
  AND function_name NOT IN (SELECT jsonb_array_elements_text(CAST(:skip AS jsonb)));

-- name: prune_done_jobs
DELETE FROM jobs
WHERE id IN (SELECT id FROM jobs WHERE status = 'done' AND finished_at < :cutoff
             ORDER BY finished_at LIMIT :limit
             FOR UPDATE SKIP LOCKED);
