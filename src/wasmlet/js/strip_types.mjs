// TypeScript -> JavaScript for wasmlet's deploys (src/wasmlet/js/typescript.py runs it).
//
// Reads {"source", "filename"} as JSON on stdin and writes one JSON line on stdout:
//   {"ok": true, "mode": "strip", "code"}            types replaced by blanks, so every
//                                                    line and column is the original's
//   {"ok": true, "mode": "transform", "code", "map"} enums, namespaces, parameter
//                                                    properties need code: a source map
//   {"ok": false, "code", "message", "line", "column"} the source does not parse
// The transformer is Node's own `module.stripTypeScriptTypes` (SWC, through amaro).
// The source is only parsed and printed here, never run.
import { stripTypeScriptTypes } from "node:module";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { source, filename } = JSON.parse(Buffer.concat(chunks).toString("utf8"));

function position(error) {
  // Node puts the parser's position first in the stack: "FILE:LINE\nSOURCE LINE\n   ^".
  const stack = String(error.stack ?? "");
  const lines = stack.split("\n");
  const head = /:(\d+)$/.exec(lines[0] ?? "");
  if (!head) return { line: null, column: null };
  const caret = lines.slice(1, 4).find((text) => /^\s*\^/.test(text));
  return { line: Number(head[1]), column: caret ? caret.indexOf("^") + 1 : null };
}

function run() {
  try {
    return { ok: true, mode: "strip", code: stripTypeScriptTypes(source, { mode: "strip" }) };
  } catch (error) {
    if (error?.code !== "ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX") throw error;
  }
  const code = stripTypeScriptTypes(source, {
    mode: "transform",
    sourceMap: true,
    sourceUrl: filename,
  });
  const marker = "\n//# sourceMappingURL=data:application/json;base64,";
  const at = code.lastIndexOf(marker);
  if (at < 0) return { ok: true, mode: "transform", code, map: null };
  const map = JSON.parse(Buffer.from(code.slice(at + marker.length).trim(), "base64").toString());
  return { ok: true, mode: "transform", code: code.slice(0, at) + "\n", map };
}

let result;
try {
  result = run();
} catch (error) {
  const code = String(error?.code ?? "");
  if (!code.startsWith("ERR_INVALID_TYPESCRIPT_SYNTAX") && !code.startsWith("ERR_UNSUPPORTED")) {
    throw error;
  }
  result = { ok: false, code, message: String(error.message), ...position(error) };
}
process.stdout.write(JSON.stringify(result) + "\n");
