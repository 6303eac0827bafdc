/* Compatibility definitions for building QuickJS for wasm32-wasi with zig's clang.
 *
 * Included before every QuickJS source file (`-include compat.h`).
 *
 * - wasi-libc's dlmalloc has malloc_usable_size, but QuickJS includes <malloc.h>
 *   only on the platforms it knows; declare it here.
 * - WebAssembly has one rounding mode, round-to-nearest, so wasi-libc's <fenv.h>
 *   defines FE_TONEAREST alone. QuickJS names FE_DOWNWARD and FE_UPWARD to round
 *   exact ties in toFixed/toPrecision away from zero; with these values
 *   fesetround() refuses them and such ties round to even instead.
 * - gettimeofday is renamed to the glue's own (below).
 */
#ifndef WASMLET_QUICKJS_COMPAT_H
#define WASMLET_QUICKJS_COMPAT_H

#include <stddef.h>

size_t malloc_usable_size(const void *ptr);

#ifndef FE_DOWNWARD
#define FE_DOWNWARD 0x400
#endif
#ifndef FE_UPWARD
#define FE_UPWARD 0x800
#endif

/* QuickJS reads the wall clock through gettimeofday; the glue's version can hold it
 * still while the context is created at deploy (see wasmlet_js.c). */
#define gettimeofday wasmlet_gettimeofday

/* Called by the patched js_parse_error (see wasmlet/js/engine.py) with the start
 * of the token where the syntax error was found, so the glue can report a column. */
void wasmlet_js_parse_error_at(const unsigned char *ptr, int line);

#endif
