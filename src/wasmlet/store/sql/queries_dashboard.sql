-- What the operator's dashboard reads (issue 16): pages of functions, one function's
-- recent figures, its per-minute timeline, one request across functions. Every query is
-- bounded by a LIMIT or by one function's kept history.

-- name: list_functions_page
-- Functions in name order after the cursor `after_name` (keyset paging).
SELECT f.name, f.version, f.enabled, f.config, f.triggers, f.created_at, f.updated_at,
       v.module_key
FROM functions f
JOIN function_versions v ON v.name = f.name AND v.version = f.version
WHERE f.name > :after_name
ORDER BY f.name
LIMIT :limit;

-- name: function_invocations_since
-- One function's invocations since :since, newest first, at most :limit.
SELECT function_name, status, error_type, duration_ms FROM invocations
WHERE function_name = :function_name AND started_at >= :since
ORDER BY seq DESC
LIMIT :limit;

-- name: function_timeline
-- One function's invocations since :since per minute (epoch minute) and error type
-- (null: no error).
SELECT CAST(started_at / 60 AS INTEGER) AS minute, error_type, COUNT(*) AS n
FROM invocations
WHERE function_name = :function_name AND started_at >= :since
GROUP BY CAST(started_at / 60 AS INTEGER), error_type
ORDER BY minute;

-- name: invocations_by_id
-- One request's invocations (attempts, or one id reused by several functions).
SELECT seq, id, function_name, version, trigger_kind, attempt, status, error_type,
       error_message, duration_ms, started_at, log_lines, user_id
FROM invocations
WHERE id = :request_id
ORDER BY seq
LIMIT :limit;

-- name: log_lines_by_request
SELECT seq, function_name, invocation_id, attempt, at, level, source, message
FROM function_logs
WHERE invocation_id = :request_id
ORDER BY seq
LIMIT :limit;
