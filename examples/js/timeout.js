// The spec's 504 example, as written.
export async function handler() {
  while (true) { /* infinite loop */ }
}
