// The spec's failure scenario 3: a database-trigger function that fails after its
// own query committed. Deploy it with a trigger that names the export:
//
//   triggers: [{"type": "database", "table": "users", "events": ["INSERT"],
//               "handler": "onUserCreated"}]
//
// Each insert into users calls onUserCreated(record, event). The profile insert
// commits on its own; the throw then fails the invocation (function_error, with the
// message in the log, handled like any failed trigger delivery), and the user's row
// and the profile both stay committed: trigger functions are not part of the
// transaction that fired them.
export async function onUserCreated(user, event) {
  // This succeeds
  await db.query("INSERT INTO profiles (user_id, email) VALUES ($1, $2)", [user.id, user.email]);

  // This fails
  throw new Error("Email service down");
}
