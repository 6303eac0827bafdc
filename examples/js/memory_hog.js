// A real allocation past the memory limit (128 MB by default): 507
// memory_limit_exceeded. (The spec's `new Array(200 * 1024 * 1024)` is a sparse
// array in every engine and allocates nothing: see sparse_array.js.)
export async function handler() {
  const huge = new Uint8Array(200 * 1024 * 1024);  // 200MB
  return huge.length;
}
