"""Outbound HTTP for functions: the allow-list, the address rules and the gateway that
makes the requests in the server process (never in a worker)."""
