// The smallest JavaScript function: answers JSON to any request.
export async function handler(req) {
  const name = req.query.name ?? "wasmlet";
  return { message: `Hello, ${name}!` };
}
