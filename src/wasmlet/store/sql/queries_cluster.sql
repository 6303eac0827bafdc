-- Several nodes on one database: the node list and the shared circuit breakers.

-- name: upsert_node
INSERT INTO nodes (id, address, version, started_at, heartbeat_at, workers, workers_alive, in_flight)
VALUES (:node, :address, :wasmlet_version, :started_at, :now, :workers, :workers_alive, :in_flight)
ON CONFLICT (id) DO UPDATE SET
    address = excluded.address, version = excluded.version, heartbeat_at = excluded.heartbeat_at,
    workers = excluded.workers, workers_alive = excluded.workers_alive,
    in_flight = excluded.in_flight;

-- name: delete_node
DELETE FROM nodes WHERE id = :node;

-- name: forget_nodes
DELETE FROM nodes WHERE heartbeat_at < :cutoff;

-- name: list_nodes
SELECT id, address, version, started_at, heartbeat_at, workers, workers_alive, in_flight
FROM nodes ORDER BY started_at, id;

-- name: add_breaker_counts
INSERT INTO breaker_counts (function_name, bucket, calls, failures)
VALUES (:function_name, :bucket, :calls, :failures)
ON CONFLICT (function_name, bucket) DO UPDATE SET
    calls = breaker_counts.calls + excluded.calls,
    failures = breaker_counts.failures + excluded.failures;

-- name: breaker_window
SELECT COALESCE(SUM(calls), 0) AS calls, COALESCE(SUM(failures), 0) AS failures
FROM breaker_counts WHERE function_name = :function_name AND bucket >= :since;

-- name: list_breakers
SELECT function_name, state, counts_since, open_until, probe_node, probe_until, reason
FROM function_breakers;

-- name: open_breaker
-- Only from the closed state this node evaluated (the same `counts_since`): when two
-- nodes see the same failures, one of them opens the breaker.
INSERT INTO function_breakers (function_name, state, counts_since, open_until, reason, updated_at)
VALUES (:function_name, 'open', :now, :until, :reason, :now)
ON CONFLICT (function_name) DO UPDATE SET
    state = 'open', counts_since = excluded.counts_since, open_until = excluded.open_until,
    probe_node = NULL, probe_until = 0, reason = excluded.reason, updated_at = excluded.updated_at
WHERE function_breakers.state = 'closed' AND function_breakers.counts_since = :counts_since;

-- name: claim_breaker_probe
UPDATE function_breakers
SET state = 'half_open', probe_node = :node, probe_until = :until, updated_at = :now
WHERE function_name = :function_name
  AND ((state = 'open' AND open_until <= :now) OR (state = 'half_open' AND probe_until <= :now));

-- name: close_breaker
UPDATE function_breakers
SET state = 'closed', counts_since = :now, probe_node = NULL, probe_until = 0,
    reason = :reason, updated_at = :now
WHERE function_name = :function_name AND state = 'half_open' AND probe_node = :node;

-- name: reopen_breaker
UPDATE function_breakers
SET state = 'open', counts_since = :now, open_until = :until, probe_node = NULL,
    probe_until = 0, reason = :reason, updated_at = :now
WHERE function_name = :function_name AND state = 'half_open' AND probe_node = :node;

-- name: release_breaker_probe
-- A probe admitted but never run: the breaker is open again, its cool-down already over.
UPDATE function_breakers SET state = 'open', probe_node = NULL, probe_until = 0, updated_at = :now
WHERE function_name = :function_name AND state = 'half_open' AND probe_node = :node;

-- name: prune_breaker_counts
DELETE FROM breaker_counts WHERE function_name = :function_name AND bucket < :since;

-- name: prune_orphan_breakers
DELETE FROM function_breakers WHERE function_name NOT IN (SELECT name FROM functions);

-- name: prune_orphan_breaker_counts
DELETE FROM breaker_counts WHERE function_name NOT IN (SELECT name FROM functions);
