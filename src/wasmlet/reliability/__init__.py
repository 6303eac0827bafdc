"""Keeping failures contained: circuit breakers (local and shared), concurrency limits
and cluster-wide slots."""
