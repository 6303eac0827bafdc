-- Finished jobs are pruned by age (issue 11): oldest first, in batches.
CREATE INDEX jobs_finished ON jobs (status, finished_at);
