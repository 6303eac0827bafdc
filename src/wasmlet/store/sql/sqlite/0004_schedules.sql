-- Cron schedules (issue 5). A run is enqueued once per (schedule, scheduled time): its
-- job id is derived from both, so any number of scheduler instances enqueue it once.
CREATE TABLE schedules (
    function_name TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
    schedule_id TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    catch_up TEXT NOT NULL,
    catch_up_cap INTEGER NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    last_run REAL,
    next_run REAL,
    last_job_id TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (function_name, schedule_id)
);

CREATE TABLE scheduler_heartbeats (
    node TEXT PRIMARY KEY,
    beat_at REAL NOT NULL,
    restarts INTEGER NOT NULL DEFAULT 0
);
