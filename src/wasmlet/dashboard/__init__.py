"""The operator's dashboard at /dashboard: pages in a browser over the management API.

The server renders a page's frame (navigation, search box, the CSRF token); the page's
script fills it from the same JSON routes the CLI calls, signed in by the session
cookie (`api.session`). `install_dashboard` mounts it on the app `wasmlet serve` runs.
"""

from __future__ import annotations

from wasmlet.dashboard.routes import install_dashboard

__all__ = ["install_dashboard"]
