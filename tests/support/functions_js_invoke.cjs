// Invokes a wasmlet function with @supabase/functions-js, as a browser or a Node app would.
// node functions_js_invoke.cjs CACHE_DIR URL KEY NAME BODY_JSON
// CACHE_DIR holds node_modules/@supabase/functions-js (scripts/ensure-test-tools puts it in
// .cache/node). Prints {"data", "error"} as one JSON line.
const { createRequire } = require("node:module");
const path = require("node:path");

const [cacheDir, url, key, name, body] = process.argv.slice(2);
const { FunctionsClient } = createRequire(path.join(cacheDir, "index.js"))(
  "@supabase/functions-js",
);

(async () => {
  const client = new FunctionsClient(url, { headers: { Authorization: `Bearer ${key}` } });
  const { data, error } = await client.invoke(name, { body: JSON.parse(body) });
  const failure = error ? { name: error.name, message: error.message } : null;
  process.stdout.write(JSON.stringify({ data, error: failure }) + "\n");
})();
