// The spec's 500 example, as written: a thrown error is 500 function_error, and its
// message and stack are in the function's logs.
export async function handler() {
  throw new Error("Unexpected error");
}
