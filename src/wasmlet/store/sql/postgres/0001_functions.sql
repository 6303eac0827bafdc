CREATE TABLE modules (
    key TEXT PRIMARY KEY,
    wasm BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE functions (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    config TEXT NOT NULL,
    triggers TEXT NOT NULL DEFAULT '[]',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE function_versions (
    name TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    module_key TEXT NOT NULL REFERENCES modules (key),
    config TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (name, version)
);
