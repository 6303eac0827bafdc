// Calls an upstream with fetch and reports what came back. Deploy with
//   --config '{"allowed_hosts": ["https://status.example.com"], "env": {"STATUS_URL": "https://status.example.com/health"}}'
// A refused or failed request rejects with a TypeError naming the reason
// (forbidden_host, connect_failed, timeout, too_large); it is caught here and
// answered as a 502. Left uncaught, connect_failed and timeout make the invocation a
// retriable host_function_error.
export default {
  async fetch(req, env) {
    try {
      const res = await fetch(env.STATUS_URL, { signal: AbortSignal.timeout(2000) });
      return Response.json({ upstream: res.status, body: await res.text() });
    } catch (error) {
      return Response.json({ error: error.name, message: error.message }, { status: 502 });
    }
  },
};
