CREATE TABLE modules (
    key TEXT PRIMARY KEY,
    wasm BLOB NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE functions (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    config TEXT NOT NULL,
    triggers TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE function_versions (
    name TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    module_key TEXT NOT NULL REFERENCES modules (key),
    config TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (name, version)
);
