-- Order per row (issue 18): the capture trigger names the changed row.
ALTER TABLE _wasmlet_outbox ADD COLUMN row_key TEXT
