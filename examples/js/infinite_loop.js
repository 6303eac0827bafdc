// The spec's failure scenario 1, as written: 504 after the function's timeout
// (10 s by default); the worker is freed at once and the next call runs normally.
export async function handler() {
  let i = 0;
  while (true) {
    i++;  // Never returns
  }
}
