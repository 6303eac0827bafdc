-- Cron schedules and the scheduler's heartbeat.

-- name: upsert_schedule
INSERT INTO schedules (function_name, schedule_id, cron, timezone, catch_up, catch_up_cap,
                       last_run, next_run, created_at, updated_at)
VALUES (:function_name, :schedule_id, :cron, :timezone, :catch_up, :catch_up_cap,
        :last_run, :next_run, :now, :now)
ON CONFLICT (function_name, schedule_id) DO UPDATE
SET catch_up = :catch_up, catch_up_cap = :catch_up_cap, updated_at = :now;

-- name: function_schedules
SELECT schedule_id FROM schedules WHERE function_name = :function_name;

-- name: delete_schedule
DELETE FROM schedules WHERE function_name = :function_name AND schedule_id = :schedule_id;

-- name: active_schedules
SELECT s.function_name, s.schedule_id, s.cron, s.timezone, s.catch_up, s.catch_up_cap,
       s.last_run, s.next_run, s.created_at
FROM schedules s JOIN functions f ON f.name = s.function_name
WHERE NOT s.paused AND f.enabled;

-- name: all_schedules
SELECT s.function_name, s.schedule_id, s.cron, s.timezone, s.catch_up, s.catch_up_cap,
       s.paused, s.last_run, s.next_run, s.last_job_id, j.status AS last_status,
       j.last_error_type AS last_error_type
FROM schedules s LEFT JOIN jobs j ON j.id = s.last_job_id
ORDER BY s.function_name, s.schedule_id;

-- name: advance_schedule
UPDATE schedules
SET last_run = :last_run, next_run = :next_run, last_job_id = COALESCE(:last_job_id, last_job_id),
    updated_at = :now
WHERE function_name = :function_name AND schedule_id = :schedule_id
  AND (last_run IS NULL OR last_run < :last_run);

-- name: set_schedule_paused
UPDATE schedules SET paused = :paused, updated_at = :now
WHERE function_name = :function_name AND schedule_id = :schedule_id;

-- name: heartbeat
INSERT INTO scheduler_heartbeats (node, beat_at, restarts) VALUES (:node, :now, :restarts)
ON CONFLICT (node) DO UPDATE SET beat_at = :now, restarts = :restarts;

-- name: forget_heartbeat
-- A node stopping cleanly: it is gone on purpose, not silent.
DELETE FROM scheduler_heartbeats WHERE node = :node;
