-- Retries, the dead letter queue and asynchronous HTTP results (issue 4).
ALTER TABLE jobs ADD COLUMN function_version INTEGER;
ALTER TABLE jobs ADD COLUMN dead_reason TEXT;
ALTER TABLE jobs ADD COLUMN last_failed_at REAL;
ALTER TABLE jobs ADD COLUMN result_status INTEGER;
ALTER TABLE jobs ADD COLUMN result_body BLOB;
ALTER TABLE jobs ADD COLUMN request_meta TEXT;
CREATE INDEX jobs_dead ON jobs (status, function_name, last_error_type);
