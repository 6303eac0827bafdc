-- Invocation history, function logs and the gauges read at scrape time (issue 6).

-- name: insert_invocation
INSERT INTO invocations (id, function_name, version, trigger_kind, attempt, status, error_type,
                         error_message, duration_ms, started_at, log_lines, user_id)
VALUES (:id, :function_name, :version, :trigger_kind, :attempt, :status, :error_type, :error,
        :duration_ms, :started_at, :log_lines, :user_id);

-- name: insert_log_line
INSERT INTO function_logs (function_name, invocation_id, attempt, at, severity, level, source,
                           message)
VALUES (:function_name, :invocation_id, :attempt, :at, :severity, :level, :source, :message);

-- name: prune_logs_over_count
-- Keeps a function's newest lines, as many as keep.
DELETE FROM function_logs
WHERE function_name = :function_name
  AND seq <= (SELECT seq FROM function_logs WHERE function_name = :function_name
              ORDER BY seq DESC LIMIT 1 OFFSET :keep);

-- name: prune_invocations_over_count
DELETE FROM invocations
WHERE function_name = :function_name
  AND seq <= (SELECT seq FROM invocations WHERE function_name = :function_name
              ORDER BY seq DESC LIMIT 1 OFFSET :keep);

-- name: prune_logs_older_than
-- At most limit rows a call, so one pass never holds the write lock for long.
DELETE FROM function_logs
WHERE seq IN (SELECT seq FROM function_logs WHERE at < :cutoff LIMIT :limit);

-- name: prune_invocations_older_than
DELETE FROM invocations
WHERE seq IN (SELECT seq FROM invocations WHERE started_at < :cutoff LIMIT :limit);

-- name: count_function_logs
SELECT COUNT(*) AS n FROM function_logs WHERE function_name = :function_name;

-- name: count_function_invocations
SELECT COUNT(*) AS n FROM invocations WHERE function_name = :function_name;

-- name: newest_log_lines
-- The newest lines that match, oldest first.
SELECT seq, invocation_id, attempt, at, level, source, message FROM (
    SELECT seq, invocation_id, attempt, at, level, source, message FROM function_logs
    WHERE function_name = :function_name
      AND severity >= :min_severity
      AND (CAST(:since AS DOUBLE PRECISION) IS NULL OR at >= :since)
      AND (CAST(:until AS DOUBLE PRECISION) IS NULL OR at < :until)
      AND (CAST(:request_id AS TEXT) IS NULL OR invocation_id = :request_id)
    ORDER BY seq DESC
    LIMIT :limit
) newest
ORDER BY seq;

-- name: log_lines_after
-- The lines after the cursor that match, oldest first (paging, --follow).
SELECT seq, invocation_id, attempt, at, level, source, message FROM function_logs
WHERE function_name = :function_name
  AND seq > :after
  AND severity >= :min_severity
  AND (CAST(:since AS DOUBLE PRECISION) IS NULL OR at >= :since)
  AND (CAST(:until AS DOUBLE PRECISION) IS NULL OR at < :until)
  AND (CAST(:request_id AS TEXT) IS NULL OR invocation_id = :request_id)
ORDER BY seq
LIMIT :limit;

-- name: last_log_seq
SELECT MAX(seq) AS seq FROM function_logs WHERE function_name = :function_name;

-- name: list_invocations
-- Newest first; before is a cursor (the seq of the last row of the previous page).
SELECT seq, id, function_name, version, trigger_kind, attempt, status, error_type,
       error_message, duration_ms, started_at, log_lines, user_id
FROM invocations
WHERE function_name = :function_name
  AND seq < :before
  AND status BETWEEN :status_min AND :status_max
  AND (CAST(:error_type AS TEXT) IS NULL OR error_type = :error_type)
  AND (CAST(:request_id AS TEXT) IS NULL OR id = :request_id)
  AND (CAST(:user_id AS TEXT) IS NULL OR user_id = :user_id)
ORDER BY seq DESC
LIMIT :limit;

-- name: has_history
SELECT 1 AS found FROM invocations WHERE function_name = :function_name LIMIT 1;

-- name: invocations_since
SELECT function_name, status, error_type, duration_ms FROM invocations
WHERE started_at >= :since;

-- name: queue_depth
-- Finished jobs are history, not depth: only the statuses an operator watches.
SELECT status, COUNT(*) AS n FROM jobs
WHERE status IN ('queued', 'running', 'failed', 'dead')
GROUP BY status;

-- name: dead_letters_by_function
SELECT function_name, COUNT(*) AS n FROM jobs WHERE status = 'dead' GROUP BY function_name;

-- name: newest_scheduler_heartbeat
SELECT MAX(beat_at) AS beat_at FROM scheduler_heartbeats;

-- name: dead_letters_since
-- Jobs buried (or buried again after a retry) since :since, per function: the dead
-- letter queue's growth, whichever node buried them.
SELECT function_name, COUNT(*) AS n FROM jobs
WHERE status = 'dead' AND last_failed_at >= :since
GROUP BY function_name;

-- name: scheduler_heartbeats_since
-- Each node's last scheduler heartbeat, for nodes heard from since :since.
SELECT node, beat_at FROM scheduler_heartbeats WHERE beat_at >= :since;
