-- Versions and rollback (issue 15): each version keeps what a rollback makes live again
-- (its triggers beside its module and config), and what `versions` lists (runtime, size).
-- Versions stored before this have no triggers recorded (NULL), except the live one,
-- which takes the function's: a rollback to such a version keeps the current triggers.
ALTER TABLE function_versions ADD COLUMN triggers TEXT;
ALTER TABLE function_versions ADD COLUMN runtime TEXT;
ALTER TABLE function_versions ADD COLUMN size BIGINT;
ALTER TABLE function_versions ADD COLUMN rolled_back_from INTEGER;
UPDATE function_versions SET triggers = (
    SELECT f.triggers FROM functions f
    WHERE f.name = function_versions.name AND f.version = function_versions.version
);
UPDATE function_versions SET size = (
    SELECT length(m.wasm) FROM modules m WHERE m.key = function_versions.module_key
);
