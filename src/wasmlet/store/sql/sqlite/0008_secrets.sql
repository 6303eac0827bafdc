-- Project-wide secrets (issue 14): values sealed with AES-GCM, never stored in the clear;
-- `digest` is keyed (HMAC), so it reveals nothing without the key either.
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    sealed BLOB NOT NULL,
    digest TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
