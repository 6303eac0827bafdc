"""The HTML of the dashboard's pages: a frame the page's script fills from the API.

Only the frame is rendered here (no function data): every value a page shows comes
from a JSON route, fetched by `static/app.js`. Text from the request is escaped.
"""

from __future__ import annotations

from html import escape

NAV = (
    ("functions", "Functions"),
    ("failures", "Failures"),
    ("schedules", "Schedules"),
    ("cluster", "Cluster"),
)


def _head(title: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · wasmlet</title>"
        '<link rel="stylesheet" href="/dashboard/static/app.css">'
    )


def page(kind: str, title: str, csrf_token: str, subject: str = "") -> str:
    """A signed-in page: `kind` tells the script what to load; `subject` is the function
    name or request id the page is about."""
    on = ' class="on"'
    links = "".join(
        f'<a href="/dashboard/{slug}"{on if slug == kind else ""}>{label}</a>'
        for slug, label in NAV
    )
    return (
        _head(title)
        + f'<meta name="csrf-token" content="{escape(csrf_token)}">'
        + '<script src="/dashboard/static/app.js" defer></script></head>'
        + f'<body data-page="{escape(kind)}" data-subject="{escape(subject)}">'
        + '<header><span class="brand">wasmlet</span>'
        + f"<nav>{links}</nav>"
        + '<form class="search" action="/dashboard/search" method="get">'
        + '<input name="request_id" placeholder="request id" aria-label="request id"'
        + ' maxlength="200" required><button>Open</button></form>'
        + '<form class="logout" action="/dashboard/logout" method="post">'
        + f'<input type="hidden" name="csrf" value="{escape(csrf_token)}">'
        + "<button>Sign out</button></form></header>"
        + f'<main><h1>{escape(title)}</h1><div id="error" class="error" hidden></div>'
        + '<div id="content">Loading…</div></main></body></html>'
    )


def login(problem: str = "", next_path: str = "") -> str:
    """The sign-in form: the service key goes in the POST body, never in a URL."""
    shown = f'<p class="error" role="alert">{escape(problem)}</p>' if problem else ""
    return (
        _head("Sign in")
        + '</head><body class="login"><main><h1>wasmlet dashboard</h1>'
        + shown
        + '<form method="post" action="/dashboard/login">'
        + '<label>Service key <input type="password" name="key" autocomplete="off"'
        + ' autofocus required maxlength="512"></label>'
        + f'<input type="hidden" name="next" value="{escape(next_path)}">'
        + "<button>Sign in</button></form></main></body></html>"
    )
