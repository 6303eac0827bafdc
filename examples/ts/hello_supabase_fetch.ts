// hello_supabase.ts with a Workers-style default export instead of Deno.serve.
import "jsr:@supabase/functions-js/edge-runtime.d.ts";

console.log("Hello from Functions!");

export default {
  async fetch(req: Request): Promise<Response> {
    const { name } = (await req.json()) as { name: string };
    const data = {
      message: `Hello ${name}!`,
    };

    return new Response(JSON.stringify(data), { headers: { "Content-Type": "application/json" } });
  },
};
