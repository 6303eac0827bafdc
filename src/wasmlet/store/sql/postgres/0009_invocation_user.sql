-- The user an invocation was for (issue 14): the `sub` of the verified JWT, null for a
-- call made with keys only, for a function with verify_jwt off, and for triggers.
ALTER TABLE invocations ADD COLUMN user_id TEXT;
