// The spec's memory snippet taken literally: `new Array(n)` only sets a length, so
// this succeeds (200, empty body) under any memory limit. Filling the array, or a
// typed array of that size (memory_hog.js), is what exceeds the limit.
export async function handler() {
  const huge = new Array(200 * 1024 * 1024);  // 200MB
  // Exceeds 128MB limit
}
