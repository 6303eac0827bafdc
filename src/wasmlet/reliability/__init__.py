"""Concurrency limits and the invoker (later: retries, dead letters, breakers)."""
