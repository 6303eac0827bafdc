"""The environment handed to worker (and compile) processes is an allow-list."""

from __future__ import annotations

from wasmlet.runtime.child_env import allowed_environment


def test_only_what_the_interpreter_needs_passes() -> None:
    server = {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "LC_CTYPE": "C.UTF-8",
        "TZ": "UTC",
        "TMPDIR": "/tmp",
        "PYTHONPATH": "/srv/wasmlet/src",
        "WASMLET_DATABASE_URL": "postgresql://u:p@db/x",
        "WASMLET_APP_DATABASE_URL": "postgresql://app:p@db/x",
        "WASMLET_SERVICE_KEY": "k",
        "PGPASSWORD": "p",
        "PGSERVICEFILE": "/etc/pg_service.conf",
        "DATABASE_URL": "postgresql://u:p@db/x",
        "AWS_ACCESS_KEY_ID": "a",
        "HOME": "/root",
        "LD_PRELOAD": "/tmp/evil.so",
        "PYTHONSTARTUP": "/tmp/x.py",
        "path": "lowercase is another name",
    }
    assert allowed_environment(server) == {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "LC_CTYPE": "C.UTF-8",
        "TZ": "UTC",
        "TMPDIR": "/tmp",
        "PYTHONPATH": "/srv/wasmlet/src",
    }
