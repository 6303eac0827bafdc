-- Named queries shared by both backends. Parameters are written :name; the
-- PostgreSQL backend turns them into psycopg's %(name)s.

-- name: put_module
INSERT INTO modules (key, wasm, created_at) VALUES (:key, :wasm, :now)
ON CONFLICT (key) DO NOTHING;

-- name: get_module
SELECT key, wasm FROM modules WHERE key = :key;

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
INSERT INTO function_versions (name, version, module_key, config, created_at)
VALUES (:name, :version, :module_key, :config, :now);

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
