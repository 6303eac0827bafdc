"""One invocation, admission to record: the invoker and the host side of db_query."""
