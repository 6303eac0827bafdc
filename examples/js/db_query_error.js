// The spec's failure scenario 4, as written: the query fails in the database, the
// DatabaseError is not caught, and the caller gets a 500.
export async function handler() {
  await db.query("SELECT * FROM nonexistent_table");
}
