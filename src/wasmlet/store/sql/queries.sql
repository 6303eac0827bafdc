-- Named queries shared by both backends. Parameters are written :name; the
-- PostgreSQL backend turns them into psycopg's %(name)s.

-- name: put_module
INSERT INTO modules (key, wasm, created_at) VALUES (:key, :wasm, :now)
ON CONFLICT (key) DO NOTHING;

-- name: get_module
SELECT key, wasm FROM modules WHERE key = :key;

-- name: announce_function_change
-- Other nodes hear of a change through PostgreSQL (LISTEN/NOTIFY, see the override);
-- a SQLite file has one node, so there is no one to tell.
SELECT :channel AS channel, :name AS name;

-- name: get_function
SELECT f.name, f.version, f.enabled, f.config, f.triggers, f.created_at, f.updated_at,
       v.module_key
FROM functions f
JOIN function_versions v ON v.name = f.name AND v.version = f.version
WHERE f.name = :name;

-- name: list_functions
SELECT f.name, f.version, f.enabled, f.config, f.triggers, f.created_at, f.updated_at,
       v.module_key
FROM functions f
JOIN function_versions v ON v.name = f.name AND v.version = f.version
ORDER BY f.name;

-- name: insert_function
INSERT INTO functions (name, version, enabled, config, triggers, created_at, updated_at)
VALUES (:name, 1, :enabled, :config, :triggers, :now, :now);

-- name: bump_function_version
UPDATE functions
SET version = version + 1, config = :config, triggers = :triggers, updated_at = :now
WHERE name = :name
RETURNING version;

-- name: insert_version
INSERT INTO function_versions (name, version, module_key, config, triggers, runtime, size,
                               rolled_back_from, created_at)
VALUES (:name, :version, :module_key, :config, :triggers, :runtime, :size, :rolled_back_from,
        :now);

-- name: list_versions
-- Newest first, at most :limit, below :before (the page's cursor).
SELECT version, module_key, runtime, size, rolled_back_from, created_at
FROM function_versions
WHERE name = :name AND version < :before
ORDER BY version DESC
LIMIT :limit;

-- name: get_version
SELECT v.version, v.module_key, v.config, v.triggers, v.runtime, v.size, v.created_at,
       m.wasm
FROM function_versions v
JOIN modules m ON m.key = v.module_key
WHERE v.name = :name AND v.version = :version;

-- name: previous_version
SELECT MAX(version) AS version FROM function_versions WHERE name = :name AND version < :below;

-- name: prune_versions
-- Keeps the newest :keep versions; the live one is the newest, so it always stays.
DELETE FROM function_versions
WHERE name = :name AND version <= :newest - :keep;

-- name: update_function_config
UPDATE functions SET config = :config, enabled = :enabled, updated_at = :now
WHERE name = :name;

-- name: delete_function
DELETE FROM functions WHERE name = :name;

-- name: delete_versions
DELETE FROM function_versions WHERE name = :name;

-- name: active_module_keys
SELECT DISTINCT v.module_key
FROM functions f
JOIN function_versions v ON v.name = f.name AND v.version = f.version;

-- name: enqueue_job
INSERT INTO jobs (id, function_name, trigger_kind, payload, request_meta, status, attempts,
                  run_at, created_at, updated_at, order_key, order_seq)
VALUES (:id, :function_name, :trigger_kind, :payload, :request_meta, 'queued', 0, :run_at,
        :now, :now, :order_key, :order_seq)
ON CONFLICT (id) DO NOTHING;

-- name: relay_outbox
-- PostgreSQL only (see the override): SQLite keeps the outbox in the application's file,
-- and `triggers/database.py` relays it from there.
SELECT 0 AS moved WHERE :limit < 0 AND :now < 0;

-- name: claim_jobs
-- One statement (atomic on its own, no transaction round trips) for up to :limit jobs.
-- skip: a JSON array of the functions this node cannot run now (left for other nodes).
-- Order per row: a job with an order_key waits while an earlier job of the same key
-- (same function, same row) is queued or running.
UPDATE jobs
SET status = 'running', locked_by = :node, locked_until = :until,
    attempts = attempts + 1, updated_at = :now
WHERE id IN (
    SELECT j.id FROM jobs j WHERE j.status = 'queued' AND j.run_at <= :now
      AND j.function_name NOT IN (SELECT value FROM json_each(:skip))
      AND (j.order_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM jobs p WHERE p.order_key = j.order_key AND p.order_seq < j.order_seq
            AND p.status IN ('queued', 'running')))
    ORDER BY j.run_at, j.created_at, j.order_seq LIMIT :limit
)
RETURNING id, function_name, trigger_kind, payload, request_meta, attempts, created_at;

-- name: claim_jobs_capped
-- One statement (atomic on its own, no transaction round trips) for up to :limit jobs.
-- skip: a JSON array of the functions this node cannot run now (left for other nodes).
-- caps: a JSON object, function name -> at most that many of its jobs (the slots it has
-- free on this node); other functions' jobs are taken up to :limit in all.
-- Order per row: a job with an order_key waits while an earlier job of the same key
-- (same function, same row) is queued or running.
UPDATE jobs
SET status = 'running', locked_by = :node, locked_until = :until,
    attempts = attempts + 1, updated_at = :now
WHERE id IN (
    SELECT id FROM (
        SELECT id, run_at, created_at, order_seq FROM (
            SELECT j.id, j.run_at, j.created_at, j.order_seq FROM jobs j
            WHERE j.status = 'queued' AND j.run_at <= :now
              AND j.function_name NOT IN (SELECT value FROM json_each(:skip))
              AND j.function_name NOT IN (SELECT key FROM json_each(:caps))
              AND (j.order_key IS NULL OR NOT EXISTS (
                  SELECT 1 FROM jobs p WHERE p.order_key = j.order_key
                    AND p.order_seq < j.order_seq AND p.status IN ('queued', 'running')))
            ORDER BY j.run_at, j.created_at, j.order_seq LIMIT :limit
        )
        UNION ALL
        SELECT id, run_at, created_at, order_seq FROM (
            SELECT j.id, j.run_at, j.created_at, j.order_seq, c.value AS room,
                   row_number() OVER (PARTITION BY j.function_name
                                      ORDER BY j.run_at, j.created_at, j.order_seq) AS n
            FROM jobs j JOIN json_each(:caps) c ON c.key = j.function_name
            WHERE j.status = 'queued' AND j.run_at <= :now
              AND (j.order_key IS NULL OR NOT EXISTS (
                  SELECT 1 FROM jobs p WHERE p.order_key = j.order_key
                    AND p.order_seq < j.order_seq AND p.status IN ('queued', 'running')))
        ) WHERE n <= room
    ) ORDER BY run_at, created_at, order_seq LIMIT :limit
)
RETURNING id, function_name, trigger_kind, payload, request_meta, attempts, created_at;

-- name: complete_job
-- How an attempt ended lands while this node holds the job, or late (its lease expired
-- in a database outage) while no other node has claimed it since: same attempt count.
UPDATE jobs
SET status = 'done', locked_by = NULL, locked_until = NULL, finished_at = :now,
    updated_at = :now, result_status = :result_status, result_body = :result_body,
    function_version = :version, dead_reason = NULL
WHERE id = :id
  AND (locked_by = :node OR (status = 'queued' AND locked_by IS NULL AND attempts = :attempt));

-- name: retry_job
UPDATE jobs
SET status = 'queued', locked_by = NULL, locked_until = NULL, run_at = :run_at,
    last_error_type = :error_type, last_error = :error,
    first_failed_at = COALESCE(first_failed_at, :now), last_failed_at = :now,
    function_version = :version, updated_at = :now
WHERE id = :id
  AND (locked_by = :node OR (status = 'queued' AND locked_by IS NULL AND attempts = :attempt));

-- name: bury_job
UPDATE jobs
SET status = 'dead', locked_by = NULL, locked_until = NULL, dead_reason = :reason,
    last_error_type = :error_type, last_error = :error,
    first_failed_at = COALESCE(first_failed_at, :now), last_failed_at = :now,
    function_version = :version, result_status = :result_status, finished_at = :now,
    updated_at = :now
WHERE id = :id
  AND (locked_by = :node OR (status = 'queued' AND locked_by IS NULL AND attempts = :attempt));

-- name: release_job
UPDATE jobs
SET status = 'queued', locked_by = NULL, locked_until = NULL, run_at = :run_at,
    attempts = attempts - 1, updated_at = :now
WHERE id = :id
  AND (locked_by = :node OR (status = 'queued' AND locked_by IS NULL AND attempts = :attempt));

-- name: extend_lease
-- One job this node is still running; a job it lost track of is left to expire.
UPDATE jobs SET locked_until = :until
WHERE id = :id AND status = 'running' AND locked_by = :node;

-- name: requeue_expired
UPDATE jobs
SET status = 'queued', locked_by = NULL, locked_until = NULL, updated_at = :now
WHERE status = 'running' AND locked_until < :now;

-- name: requeue_all_running
UPDATE jobs
SET status = 'queued', locked_by = NULL, locked_until = NULL, updated_at = :now
WHERE status = 'running';

-- name: get_job
SELECT id, function_name, function_version, trigger_kind, payload, request_meta, status,
       attempts, run_at, dead_reason, last_error_type, last_error, result_status, result_body,
       created_at, updated_at, first_failed_at, last_failed_at, finished_at
FROM jobs WHERE id = :id;

-- name: next_due_job
SELECT MIN(run_at) AS run_at FROM jobs WHERE status = 'queued';

-- name: next_due_claimable
-- When this node next has something to claim: skip and order as in claim_jobs.
SELECT MIN(j.run_at) AS run_at FROM jobs j
WHERE j.status = 'queued' AND j.function_name NOT IN (SELECT value FROM json_each(:skip))
  AND (j.order_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM jobs p WHERE p.order_key = j.order_key AND p.order_seq < j.order_seq
        AND p.status IN ('queued', 'running')));

-- name: prune_done_jobs
-- Finished jobs past their retention, oldest first, at most limit rows a call.
DELETE FROM jobs
WHERE id IN (SELECT id FROM jobs WHERE status = 'done' AND finished_at < :cutoff
             ORDER BY finished_at LIMIT :limit);

-- name: list_dead
SELECT id, function_name, function_version, trigger_kind, payload, attempts, dead_reason,
       last_error_type, last_error, created_at, first_failed_at, last_failed_at
FROM jobs
WHERE status = 'dead'
  AND (CAST(:function AS TEXT) IS NULL OR function_name = :function)
  AND (CAST(:error_type AS TEXT) IS NULL OR last_error_type = :error_type)
ORDER BY last_failed_at, id
LIMIT :limit OFFSET :offset;

-- name: count_dead
SELECT COUNT(*) AS n FROM jobs
WHERE status = 'dead'
  AND (CAST(:function AS TEXT) IS NULL OR function_name = :function)
  AND (CAST(:error_type AS TEXT) IS NULL OR last_error_type = :error_type);

-- name: redrive_dead
UPDATE jobs
SET status = 'queued', attempts = 0, run_at = :now, dead_reason = NULL, finished_at = NULL,
    updated_at = :now
WHERE status = 'dead'
  AND (CAST(:id AS TEXT) IS NULL OR id = :id)
  AND (CAST(:function AS TEXT) IS NULL OR function_name = :function)
  AND (CAST(:error_type AS TEXT) IS NULL OR last_error_type = :error_type);

-- name: purge_dead
DELETE FROM jobs
WHERE status = 'dead'
  AND (CAST(:id AS TEXT) IS NULL OR id = :id)
  AND (CAST(:function AS TEXT) IS NULL OR function_name = :function)
  AND (CAST(:error_type AS TEXT) IS NULL OR last_error_type = :error_type);

-- name: count_jobs
SELECT status, COUNT(*) AS n FROM jobs GROUP BY status;

-- name: oldest_queued_job
SELECT MIN(created_at) AS oldest FROM jobs WHERE status = 'queued';
