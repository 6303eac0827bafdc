-- Project-wide secrets (secrets/service.py).

-- name: put_secret
INSERT INTO secrets (name, sealed, digest, created_at, updated_at)
VALUES (:name, :sealed, :digest, :now, :now)
ON CONFLICT (name) DO UPDATE
SET sealed = excluded.sealed, digest = excluded.digest, updated_at = excluded.updated_at;

-- name: list_secrets
SELECT name, digest, updated_at FROM secrets ORDER BY name;

-- name: sealed_secrets
SELECT name, sealed FROM secrets ORDER BY name;

-- name: delete_secret
DELETE FROM secrets WHERE name = :name;
