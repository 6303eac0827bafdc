// TypeScript -> JavaScript for wasmlet's deploys (src/wasmlet/js/typescript.py runs it).
//
// Reads {"source", "filename"} as JSON on stdin and writes one JSON line on stdout:
//   {"ok": true, "mode": "strip", "code"}            types replaced by blanks, so every
//                                                    line and column is the original's
//   {"ok": true, "mode": "transform", "code", "map", "layout"}
//                                                    enums, namespaces, parameter
//                                                    properties need code: a source map;
//                                                    "layout" when the code was laid out
//                                                    again on the .ts file's lines (below)
//   {"ok": false, "code", "message", "line", "column"} the source does not parse
// The transformer is Node's own `module.stripTypeScriptTypes` (SWC, through amaro).
// The source is only parsed and printed here, never run.
import { stripTypeScriptTypes } from "node:module";

// Load the transformer before the request arrives: a spare process (typescript.py)
// waits here, so a deploy pays for the transform only.
stripTypeScriptTypes("", { mode: "strip" });

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

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// For each generated line, the original line (from 0) of its first mapped segment, or -1.
function firstOriginalLines(mappings) {
  const lines = [];
  let sourceLine = 0;
  for (const group of mappings.split(";")) {
    let first = -1;
    for (const segment of group.split(",")) {
      const values = [];
      let shift = 0;
      let value = 0;
      for (const char of segment) {
        const digit = BASE64.indexOf(char);
        value += (digit & 31) << shift;
        if (digit & 32) {
          shift += 5;
        } else {
          values.push(value & 1 ? -(value >> 1) : value >> 1);
          shift = value = 0;
        }
      }
      if (values.length >= 4) {
        sourceLine += values[2];
        if (first < 0) first = sourceLine;
      }
    }
    lines.push(first);
  }
  return lines;
}

// The transformed code with each generated line moved onto the line of the .ts file it
// came from: blank lines are added before a line whose original is further down, and a
// line whose original is not further down is joined onto the current one (after a
// space; never after a `//` comment). Returns null unless printing the result gives
// exactly what printing the transformed code gives, i.e. the same tokens, so a join or
// a blank line that would change a template literal or a comment's reach is never kept.
// `layout[r]` lists, for output line r + 1, [column where a piece starts, its generated
// line], both from 1.
function relayout(code, map) {
  const firsts = firstOriginalLines(map.mappings ?? "");
  const out = [""];
  const layout = [[]];
  code.split("\n").forEach((text, index) => {
    if (text.trim() === "") return;
    const original = firsts[index] ?? -1;
    let current = out.length - 1;
    while (original > current) {
      out.push("");
      layout.push([]);
      current += 1;
    }
    if (out[current] !== "" && out[current].includes("//")) {
      out.push("");
      layout.push([]);
      current += 1;
    }
    const start = out[current] === "" ? 0 : out[current].length + 1;
    out[current] = out[current] === "" ? text : `${out[current]} ${text}`;
    layout[current].push([start + 1, index + 1]);
  });
  const relaid = out.join("\n") + "\n";
  const print = (text) => stripTypeScriptTypes(text, { mode: "transform" });
  return print(relaid) === print(code) ? { code: relaid, layout } : null;
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
  const plain = code.slice(0, at) + "\n";
  let relaid = null;
  try {
    relaid = relayout(plain, map);
  } catch {
    relaid = null; // the check could not print it: keep the code as transformed
  }
  if (relaid === null) return { ok: true, mode: "transform", code: plain, map };
  return { ok: true, mode: "transform", code: relaid.code, map, layout: relaid.layout };
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
