// db.query with parameters: they are bound ($1, $2, ...), never spliced into the SQL.
//   POST {"email": "ada@example.com"}  -> 201 with the new row
//   GET ?email=ada@example.com         -> the matching rows
export async function handler(req) {
  if (req.method === "POST") {
    const { email } = await req.json();
    const rows = await db.query("INSERT INTO users (email) VALUES ($1) RETURNING id, email", [
      email,
    ]);
    return { status: 201, body: rows[0] };
  }
  const rows = await db.query("SELECT id, email FROM users WHERE email = $1", [req.query.email]);
  return { users: rows, count: rows.rowCount };
}
