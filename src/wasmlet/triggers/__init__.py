"""How invocations start besides HTTP: database changes, schedules, the durable queue."""
