// The Supabase Edge Functions starter, as `supabase functions new` writes it (in JS).
// Invoke with {"name": "Functions"}: 200 {"message": "Hello Functions!"}.
console.log("Hello from Functions!");

Deno.serve(async (req) => {
  const { name } = await req.json();
  const data = {
    message: `Hello ${name}!`,
  };

  return new Response(
    JSON.stringify(data),
    { headers: { "Content-Type": "application/json" } },
  );
});
