// The request as the function sees it, answered with a status and headers.
export async function handler(req) {
  const body = req.headers.get("content-type") === "application/json"
    ? await req.json()
    : await req.text();
  console.log("echo", req.method, req.path);
  return {
    status: 201,
    headers: { "x-echo": "yes" },
    body: { method: req.method, path: req.path, query: req.query, body },
  };
}
