"""`wasmlet init [DIR]` and `wasmlet new NAME --lang js|ts|c`: a project folder with a
`wasmlet.toml` and its functions' files. Nothing existing is ever overwritten."""

from __future__ import annotations

from pathlib import Path

from wasmlet.cli.manifest import MANIFEST_NAME

LANGS = ("js", "ts", "c")

MANIFEST_HEAD = """\
# wasmlet project manifest: `wasmlet dev` runs it, `wasmlet deploy` deploys what changed.
# Paths are relative to this file. Unknown keys are errors.

[server]
# The server `wasmlet dev` and `wasmlet deploy` use when no --url / $WASMLET_URL is given.
# Never write a key here: name an environment variable (key_env) or a server data dir
# whose keys.json holds it (data_dir; `wasmlet dev` starts its server there).
url = "http://127.0.0.1:8787"
data_dir = ".wasmlet/dev"
# key_env = "MY_WASMLET_KEY"
"""

JS_SOURCE = """\
// {name}: an HTTP function. `wasmlet invoke {name} -d world` answers "Hello, world!".
export async function handler(req) {{
  const name = (await req.text()) || "wasmlet";
  console.log(`${{process.env.GREETING}} ${{name}}`);
  return `Hello, ${{name}}!`;
}}
"""

TS_SOURCE = """\
// {name}: an HTTP function in TypeScript (types are stripped at deploy).
interface Greeting {{
  text: string;
}}

export async function handler(req: Request): Promise<string> {{
  const name: string = (await req.text()) || "wasmlet";
  const greeting: Greeting = {{ text: `Hello, ${{name}}!` }};
  console.log(`${{process.env.GREETING}} ${{name}}`);
  return greeting.text;
}}
"""

C_SOURCE = """\
/* {name}: a WASI command. stdin is the request body, stdout the response body,
 * stderr the function's log. Built by the `build` line of wasmlet.toml. */
#include <stdio.h>

int main(void) {{
    char name[256];
    size_t n = fread(name, 1, sizeof name - 1, stdin);
    name[n] = 0;
    fprintf(stderr, "greeting %s\\n", n ? name : "wasmlet");
    printf("Hello, %s!", n ? name : "wasmlet");
    return 0;
}}
"""


def _table(name: str, lang: str) -> str:
    folder = f"functions/{name}"
    if lang == "c":
        return f"""
[functions.{name}]
wasm = "{folder}/{name}.wasm"
# zig's clang for wasm32-wasi; `python` here runs with wasmlet's own Python (and its zig)
build = "python -m ziglang cc -target wasm32-wasi -O2 -s {folder}/{name}.c -o {folder}/{name}.wasm"
watch = ["{folder}/{name}.c"]

[functions.{name}.config]
timeout_ms = 5000
public = true
"""
    return f"""
[functions.{name}]
source = "{folder}/index.{lang}"
env = {{ GREETING = "hello" }}
# secrets = ["API_TOKEN"]            # project secrets it needs (`wasmlet secrets set`)
# allowed_hosts = ["https://api.example.com"]

[functions.{name}.config]
timeout_ms = 5000
memory_mb = 64
public = true

[[functions.{name}.triggers]]
type = "http"

# [[functions.{name}.triggers]]
# type = "schedule"
# cron = "*/5 * * * *"
# timezone = "Europe/Paris"
# catch_up = "latest"

# [[functions.{name}.triggers]]
# type = "database"
# table = "orders"
# events = ["INSERT", "UPDATE"]
"""


def _source(name: str, lang: str) -> tuple[str, str]:
    template = {"js": JS_SOURCE, "ts": TS_SOURCE, "c": C_SOURCE}[lang]
    filename = f"{name}.c" if lang == "c" else f"index.{lang}"
    return filename, template.format(name=name)


class ScaffoldError(Exception):
    pass


def init_project(folder: Path, name: str = "hello", lang: str = "js") -> list[Path]:
    """Writes `wasmlet.toml` and one function into `folder` (created if missing)."""
    manifest = folder / MANIFEST_NAME
    if manifest.exists():
        raise ScaffoldError(f"{manifest} already exists")
    folder.mkdir(parents=True, exist_ok=True)
    manifest.write_text(MANIFEST_HEAD, "utf-8")
    written = [manifest, *add_function(folder, name, lang)]
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text(".wasmlet/\n*.wasm\n", "utf-8")
        written.append(ignore)
    return written


def add_function(root: Path, name: str, lang: str) -> list[Path]:
    """Adds `functions/NAME/` and its `[functions.NAME]` table to the manifest."""
    from wasmlet.cli.manifest import load_project

    manifest = root / MANIFEST_NAME
    project = load_project(manifest)
    if name in project.manifest.functions:
        raise ScaffoldError(f"{manifest} already declares function {name}")
    folder = root / "functions" / name
    filename, text = _source(name, lang)
    target = folder / filename
    if target.exists():
        raise ScaffoldError(f"{target} already exists")
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(text, "utf-8")
    with manifest.open("a", encoding="utf-8") as handle:
        handle.write(_table(name, lang))
    load_project(manifest)  # what was written parses
    return [target]
