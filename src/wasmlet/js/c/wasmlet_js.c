/* wasmlet's JavaScript engine: QuickJS inside a WASI command module.
 *
 * The module has two entry points:
 *
 *   wasmlet_js_init   run once, at deploy, by wasmlet/js/package.py. It reads a JSON
 *                     document from stdin ({"prelude", "source", "filename",
 *                     "config"}), creates the QuickJS runtime, runs the prelude
 *                     (wasmlet/js/prelude.js), compiles and evaluates the function's
 *                     module, and writes a JSON report to stdout. The host then
 *                     snapshots linear memory and globals into a new module, so
 *                     every invocation starts with the engine ready and the
 *                     function loaded.
 *   _start (main)     one invocation (guest ABI v1): the prelude reads the request
 *                     from the environment and stdin, calls the handler, and writes
 *                     the response; exit code 0 on success, 1 when the handler threw.
 *
 * Nothing here uses stdio: a FILE's buffers and EOF flags would be captured by the
 * snapshot. Reads and writes go straight to the WASI file descriptors.
 *
 * The prelude reaches the host through one object of primitives, `__wasmlet`,
 * which it captures and deletes from the global object.
 */

#include <stdint.h>
#include <stdio.h> /* snprintf only: no FILE is ever used */
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

#include "quickjs.h"

#define WASMLET_IMPORT(name) \
    __attribute__((import_module("wasmlet"), import_name(name)))

/* guest ABI v1 host functions (docs/guest-abi.md) */
WASMLET_IMPORT("log") int32_t host_log(int32_t level, const void *ptr, int32_t len);
WASMLET_IMPORT("set_status") int32_t host_set_status(int32_t code);
WASMLET_IMPORT("set_header")
int32_t host_set_header(const void *name, int32_t name_len, const void *value, int32_t value_len);

WASMLET_IMPORT("db_query")
int32_t host_db_query(const void *sql, int32_t sql_len, const void *params, int32_t params_len);
WASMLET_IMPORT("db_result") int32_t host_db_result(void *buf, int32_t buf_len);

WASMLET_IMPORT("http_request")
int32_t host_http_request(const void *head, int32_t head_len, const void *body, int32_t body_len);
WASMLET_IMPORT("http_result") int32_t host_http_result(void *buf, int32_t buf_len);
WASMLET_IMPORT("http_body") int32_t host_http_body(void *buf, int32_t buf_len);

#define EXIT_HANDLER_FAILED 1
#define EXIT_ENGINE_FAILED 70
#define JS_STACK_SIZE (384 * 1024)

/* The prelude's step() answers with one of these, or the milliseconds until its
 * next timer is due. */
#define STEP_DONE (-2)
#define STEP_FAILED (-3)
#define STEP_IDLE (-1)

static JSRuntime *rt;
static JSContext *ctx;
static JSValue step_fn;
static JSValue start_fn;
static int initialized;

/* Where the function's source sits while it is compiled, for syntax error columns. */
static const unsigned char *source_start;
static const unsigned char *source_end;
static int error_line;
static int error_column;

static uint64_t random_state;

/* Set while the context is created at deploy: QuickJS seeds its own Math.random
 * state from the clock, and a frozen clock keeps the snapshot (and so the module's
 * hash) the same for the same source. The prelude replaces Math.random anyway. */
static int freeze_clock;

/* `gettimeofday` is wasmlet_gettimeofday here and in QuickJS (c/compat.h). */
int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    (void)tz;
    if (freeze_clock) {
        tv->tv_sec = 0;
        tv->tv_usec = 0;
        return 0;
    }
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
    return 0;
}

/* ---- low-level I/O ------------------------------------------------------------ */

static int write_all(int fd, const void *data, size_t len) {
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void write_str(int fd, const char *text) { write_all(fd, text, strlen(text)); }

/* All of fd 0, in a malloc'ed buffer with a NUL after it. */
static uint8_t *read_all_stdin(size_t *out_len) {
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap + 1);
    if (!buf)
        return NULL;
    for (;;) {
        if (len == cap) {
            uint8_t *bigger = realloc(buf, cap * 2 + 1);
            if (!bigger) {
                free(buf);
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(0, buf + len, cap - len);
        if (n < 0) {
            free(buf);
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = 0;
    *out_len = len;
    return buf;
}

/* ---- syntax error positions ---------------------------------------------------- */

void wasmlet_js_parse_error_at(const unsigned char *ptr, int line) {
    if (!source_start || ptr < source_start || ptr > source_end)
        return;
    const unsigned char *p = ptr;
    while (p > source_start && p[-1] != '\n')
        p--;
    int column = 1;
    for (; p < ptr; p++) {
        if ((*p & 0xC0) != 0x80) /* count code points, not UTF-8 continuation bytes */
            column++;
    }
    error_line = line;
    error_column = column;
}

/* ---- primitives for the prelude ------------------------------------------------ */

/* The bytes of a string, ArrayBuffer or typed array argument (UTF-8 for strings).
 * `*to_free` is set when the result must be released with JS_FreeCString. */
static const uint8_t *bytes_of(JSContext *c, JSValueConst value, size_t *len, const char **to_free,
                               JSValue *held) {
    *to_free = NULL;
    *held = JS_UNDEFINED;
    if (JS_IsString(value)) {
        const char *text = JS_ToCStringLen(c, len, value);
        *to_free = text;
        return (const uint8_t *)text;
    }
    size_t size;
    uint8_t *data = JS_GetArrayBuffer(c, &size, value);
    if (data) {
        *len = size;
        return data;
    }
    JS_FreeValue(c, JS_GetException(c));
    size_t offset, element;
    JSValue buffer = JS_GetTypedArrayBuffer(c, value, &offset, len, &element);
    if (JS_IsException(buffer))
        return NULL;
    data = JS_GetArrayBuffer(c, &size, buffer);
    *held = buffer;
    return data ? data + offset : NULL;
}

static void release_bytes(JSContext *c, const char *to_free, JSValue held) {
    if (to_free)
        JS_FreeCString(c, to_free);
    JS_FreeValue(c, held);
}

/* write(fd, string | ArrayBuffer | TypedArray) -> 0, or -1 when the write failed */
static JSValue prim_write(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    int fd;
    if (JS_ToInt32(c, &fd, argv[0]) || (fd != 1 && fd != 2))
        return JS_ThrowRangeError(c, "write: fd must be 1 or 2");
    size_t len;
    const char *to_free;
    JSValue held;
    const uint8_t *data = bytes_of(c, argv[1], &len, &to_free, &held);
    if (!data) {
        release_bytes(c, to_free, held);
        return JS_ThrowTypeError(c, "write: expected a string or bytes");
    }
    int result = write_all(fd, data, len);
    release_bytes(c, to_free, held);
    return JS_NewInt32(c, result);
}

/* readInput() -> ArrayBuffer with all of stdin */
static JSValue prim_read_input(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    size_t len;
    uint8_t *data = read_all_stdin(&len);
    if (!data)
        return JS_ThrowInternalError(c, "out of memory reading the request body");
    JSValue buffer = JS_NewArrayBufferCopy(c, data, len);
    free(data);
    return buffer;
}

/* log(level, text) -> 0 or -1 (guest ABI `log`) */
static JSValue prim_log(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    int level;
    if (JS_ToInt32(c, &level, argv[0]))
        return JS_EXCEPTION;
    size_t len;
    const char *text = JS_ToCStringLen(c, &len, argv[1]);
    if (!text)
        return JS_EXCEPTION;
    int32_t result = host_log(level, text, (int32_t)len);
    JS_FreeCString(c, text);
    return JS_NewInt32(c, result);
}

/* setStatus(code) -> 0 or -1 */
static JSValue prim_set_status(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    int code;
    if (JS_ToInt32(c, &code, argv[0]))
        return JS_EXCEPTION;
    return JS_NewInt32(c, host_set_status(code));
}

/* setHeader(name, value) -> 0 or -1 */
static JSValue prim_set_header(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    size_t name_len, value_len;
    const char *name = JS_ToCStringLen(c, &name_len, argv[0]);
    if (!name)
        return JS_EXCEPTION;
    const char *value = JS_ToCStringLen(c, &value_len, argv[1]);
    if (!value) {
        JS_FreeCString(c, name);
        return JS_EXCEPTION;
    }
    int32_t result = host_set_header(name, (int32_t)name_len, value, (int32_t)value_len);
    JS_FreeCString(c, name);
    JS_FreeCString(c, value);
    return JS_NewInt32(c, result);
}

/* environ() -> {name: value} of the invocation's environment (read through WASI at
 * each call: libc's environ would be the one captured at deploy). */
static JSValue prim_environ(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    __wasi_size_t count, size;
    if (__wasi_environ_sizes_get(&count, &size) != 0)
        return JS_NewObject(c);
    uint8_t **pointers = malloc((count + 1) * sizeof(uint8_t *));
    uint8_t *block = malloc(size + 1);
    if (!pointers || !block) {
        free(pointers);
        free(block);
        return JS_ThrowInternalError(c, "out of memory reading the environment");
    }
    JSValue env = JS_NewObject(c);
    if (__wasi_environ_get(pointers, block) == 0) {
        for (__wasi_size_t i = 0; i < count; i++) {
            const char *entry = (const char *)pointers[i];
            const char *eq = strchr(entry, '=');
            if (!eq)
                continue;
            JSAtom key = JS_NewAtomLen(c, entry, (size_t)(eq - entry));
            JS_DefinePropertyValue(c, env, key, JS_NewString(c, eq + 1), JS_PROP_C_W_E);
            JS_FreeAtom(c, key);
        }
    }
    free(pointers);
    free(block);
    return env;
}

/* decodeUtf8(bytes) -> string */
static JSValue prim_decode_utf8(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    size_t len;
    const char *to_free;
    JSValue held;
    const uint8_t *data = bytes_of(c, argv[0], &len, &to_free, &held);
    if (!data) {
        release_bytes(c, to_free, held);
        return JS_ThrowTypeError(c, "expected bytes");
    }
    JSValue text = JS_NewStringLen(c, (const char *)data, len);
    release_bytes(c, to_free, held);
    return text;
}

/* encodeUtf8(string) -> ArrayBuffer */
static JSValue prim_encode_utf8(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    size_t len;
    const char *text = JS_ToCStringLen(c, &len, argv[0]);
    if (!text)
        return JS_EXCEPTION;
    JSValue buffer = JS_NewArrayBufferCopy(c, (const uint8_t *)text, len);
    JS_FreeCString(c, text);
    return buffer;
}

/* randomBytes(n) -> ArrayBuffer of n bytes from WASI random_get */
static JSValue prim_random_bytes(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    uint32_t n;
    if (JS_ToUint32(c, &n, argv[0]))
        return JS_EXCEPTION;
    if (n > 65536)
        return JS_ThrowRangeError(c, "at most 65536 random bytes at a time");
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return JS_ThrowInternalError(c, "out of memory");
    if (n && __wasi_random_get(buf, n) != 0) {
        free(buf);
        return JS_ThrowInternalError(c, "random_get failed");
    }
    JSValue buffer = JS_NewArrayBufferCopy(c, buf, n);
    free(buf);
    return buffer;
}

/* random() -> a double in [0, 1): xorshift64*, seeded per invocation in main(),
 * because the seed QuickJS picks at start-up would be frozen in the snapshot. */
static JSValue prim_random(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    uint64_t x = random_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    random_state = x;
    uint64_t bits = x * 0x2545F4914F6CDD1DULL;
    return JS_NewFloat64(c, (double)(bits >> 11) * (1.0 / 9007199254740992.0));
}

/* monotonicMs() -> milliseconds of a monotonic clock */
static JSValue prim_monotonic(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return JS_NewFloat64(c, (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6);
}

/* dbQuery(sql, paramsJson) -> the host's result JSON text, or null when the host
 * refused the arguments. */
static JSValue prim_db_query(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    size_t sql_len, params_len;
    const char *sql = JS_ToCStringLen(c, &sql_len, argv[0]);
    if (!sql)
        return JS_EXCEPTION;
    const char *params = JS_ToCStringLen(c, &params_len, argv[1]);
    if (!params) {
        JS_FreeCString(c, sql);
        return JS_EXCEPTION;
    }
    int32_t size = host_db_query(sql, (int32_t)sql_len, params, (int32_t)params_len);
    JS_FreeCString(c, sql);
    JS_FreeCString(c, params);
    if (size < 0)
        return JS_NULL;
    char *buf = malloc((size_t)size + 1);
    if (!buf)
        return JS_ThrowInternalError(c, "out of memory reading a query result");
    int32_t copied = host_db_result(buf, size);
    if (copied < 0) {
        free(buf);
        return JS_NULL;
    }
    JSValue text = JS_NewStringLen(c, buf, (size_t)copied);
    free(buf);
    return text;
}

/* httpRequest(headJson, body) -> the host's response head JSON text (a response's
 * status, headers and body_length, or {"error": {...}}), or null when the host
 * refused the arguments. fetch in the prelude reads the body with httpBody(n). */
static JSValue prim_http_request(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    size_t head_len;
    const char *head = JS_ToCStringLen(c, &head_len, argv[0]);
    if (!head)
        return JS_EXCEPTION;
    size_t body_len = 0;
    const char *to_free = NULL;
    JSValue held = JS_UNDEFINED;
    const uint8_t *body = (const uint8_t *)"";
    if (!JS_IsUndefined(argv[1]) && !JS_IsNull(argv[1])) {
        body = bytes_of(c, argv[1], &body_len, &to_free, &held);
        if (!body) {
            release_bytes(c, to_free, held);
            JS_FreeCString(c, head);
            return JS_ThrowTypeError(c, "httpRequest: the body must be a string or bytes");
        }
    }
    int32_t size = host_http_request(head, (int32_t)head_len, body, (int32_t)body_len);
    release_bytes(c, to_free, held);
    JS_FreeCString(c, head);
    if (size < 0)
        return JS_NULL;
    char *text = malloc((size_t)size + 1);
    if (!text)
        return JS_ThrowInternalError(c, "out of memory reading a response head");
    int32_t copied = host_http_result(text, size);
    if (copied < 0) {
        free(text);
        return JS_NULL;
    }
    JSValue result = JS_NewStringLen(c, text, (size_t)copied);
    free(text);
    return result;
}

/* httpBody(length) -> ArrayBuffer with the last response's body (at most length bytes) */
static JSValue prim_http_body(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    uint32_t length;
    if (JS_ToUint32(c, &length, argv[0]))
        return JS_EXCEPTION;
    if (length > 0x7fffffffU)
        return JS_ThrowRangeError(c, "httpBody: length out of range");
    uint8_t *data = malloc(length ? length : 1);
    if (!data)
        return JS_ThrowInternalError(c, "out of memory reading a response body");
    int32_t got = length ? host_http_body(data, (int32_t)length) : 0;
    JSValue buffer = JS_NewArrayBufferCopy(c, data, got > 0 ? (size_t)got : 0);
    free(data);
    return buffer;
}

static const JSCFunctionListEntry primitives[] = {
    JS_CFUNC_DEF("write", 2, prim_write),
    JS_CFUNC_DEF("readInput", 0, prim_read_input),
    JS_CFUNC_DEF("log", 2, prim_log),
    JS_CFUNC_DEF("setStatus", 1, prim_set_status),
    JS_CFUNC_DEF("setHeader", 2, prim_set_header),
    JS_CFUNC_DEF("environ", 0, prim_environ),
    JS_CFUNC_DEF("decodeUtf8", 1, prim_decode_utf8),
    JS_CFUNC_DEF("encodeUtf8", 1, prim_encode_utf8),
    JS_CFUNC_DEF("randomBytes", 1, prim_random_bytes),
    JS_CFUNC_DEF("random", 0, prim_random),
    JS_CFUNC_DEF("monotonicMs", 0, prim_monotonic),
    JS_CFUNC_DEF("dbQuery", 2, prim_db_query),
    JS_CFUNC_DEF("httpRequest", 2, prim_http_request),
    JS_CFUNC_DEF("httpBody", 1, prim_http_body),
};

/* ---- reporting ------------------------------------------------------------------ */

/* `{"ok": false, "kind": KIND, "error": ERROR}` on stdout, ERROR built by the prelude's
 * describe() when it is available. */
static void report_failure(const char *kind, JSValue exception) {
    JSValue global = JS_GetGlobalObject(ctx);
    JSValue describe = JS_GetPropertyStr(ctx, global, "__wasmlet_describe");
    JSValue described = JS_UNDEFINED;
    if (JS_IsFunction(ctx, describe))
        described = JS_Call(ctx, describe, JS_UNDEFINED, 1, (JSValueConst *)&exception);
    JSValue text = JS_UNDEFINED;
    if (!JS_IsUndefined(described) && !JS_IsException(described))
        text = JS_JSONStringify(ctx, described, JS_UNDEFINED, JS_UNDEFINED);
    char head[160];
    snprintf(head, sizeof head, "{\"ok\": false, \"kind\": \"%s\", \"line\": %d, \"column\": %d",
             kind, error_line, error_column);
    write_str(1, head);
    write_str(1, ", \"error\": ");
    const char *json = JS_IsString(text) ? JS_ToCString(ctx, text) : NULL;
    write_str(1, json ? json : "null");
    write_str(1, "}\n");
    if (json)
        JS_FreeCString(ctx, json);
    if (JS_IsException(described))
        JS_FreeValue(ctx, JS_GetException(ctx));
    JS_FreeValue(ctx, text);
    JS_FreeValue(ctx, described);
    JS_FreeValue(ctx, describe);
    JS_FreeValue(ctx, global);
}

/* Last resort when the prelude cannot report an exception itself. */
static void print_exception(JSValue exception) {
    const char *text = JS_ToCString(ctx, exception);
    write_str(2, "Uncaught ");
    write_str(2, text ? text : "exception");
    write_str(2, "\n");
    if (text)
        JS_FreeCString(ctx, text);
    if (JS_IsObject(exception)) {
        JSValue stack = JS_GetPropertyStr(ctx, exception, "stack");
        const char *trace = JS_IsString(stack) ? JS_ToCString(ctx, stack) : NULL;
        if (trace) {
            write_str(2, trace);
            JS_FreeCString(ctx, trace);
        }
        JS_FreeValue(ctx, stack);
    }
}

static int run_jobs(void) {
    JSContext *job_ctx;
    for (;;) {
        int done = JS_ExecutePendingJob(rt, &job_ctx);
        if (done == 0)
            return 0;
        if (done < 0)
            return -1;
    }
}

/* ---- deploy-time initialisation (snapshotted) ------------------------------------ */

static JSValue eval_text(JSValue text, const char *filename, int flags) {
    size_t len;
    const char *code = JS_ToCStringLen(ctx, &len, text);
    if (!code)
        return JS_EXCEPTION;
    source_start = (const unsigned char *)code;
    source_end = source_start + len;
    error_line = error_column = 0;
    JSValue result = JS_Eval(ctx, code, len, filename, flags);
    source_start = source_end = NULL;
    JS_FreeCString(ctx, code);
    return result;
}

/* A function is one file: any other import is refused with a clear message. */
static JSModuleDef *refuse_import(JSContext *c, const char *name, void *opaque) {
    JS_ThrowReferenceError(c, "cannot import '%s': a function is a single file, and no "
                              "other modules are available", name);
    return NULL;
}

static int init_failed(const char *kind) {
    JSValue exception = JS_GetException(ctx);
    report_failure(kind, exception);
    JS_FreeValue(ctx, exception);
    return 1;
}

__attribute__((export_name("wasmlet_js_init"))) int wasmlet_js_init(void) {
    if (initialized) {
        write_str(1, "{\"ok\": false, \"kind\": \"engine\", \"error\": "
                     "{\"message\": \"already initialised\"}}\n");
        return 1;
    }
    size_t input_len;
    uint8_t *input = read_all_stdin(&input_len);
    rt = JS_NewRuntime();
    freeze_clock = 1;
    ctx = rt ? JS_NewContext(rt) : NULL;
    freeze_clock = 0;
    if (!input || !ctx) {
        write_str(1, "{\"ok\": false, \"kind\": \"engine\", \"error\": "
                     "{\"message\": \"out of memory starting the engine\"}}\n");
        return 1;
    }
    JS_SetMaxStackSize(rt, JS_STACK_SIZE);
    JS_SetModuleLoaderFunc(rt, NULL, refuse_import, NULL);

    JSValue global = JS_GetGlobalObject(ctx);
    JSValue prims = JS_NewObject(ctx);
    JS_SetPropertyFunctionList(ctx, prims, primitives,
                               (int)(sizeof primitives / sizeof primitives[0]));
    JS_SetPropertyStr(ctx, global, "__wasmlet", prims);

    JSValue request = JS_ParseJSON(ctx, (const char *)input, input_len, "<deploy request>");
    free(input);
    if (JS_IsException(request))
        return init_failed("engine");
    JSValue prelude = JS_GetPropertyStr(ctx, request, "prelude");
    JSValue source = JS_GetPropertyStr(ctx, request, "source");
    JSValue filename_value = JS_GetPropertyStr(ctx, request, "filename");
    JSValue config = JS_GetPropertyStr(ctx, request, "config");
    const char *filename = JS_ToCString(ctx, filename_value);

    /* The prelude is a script whose completion value is boot(namespace, config). */
    JSValue boot = eval_text(prelude, "wasmlet:prelude", JS_EVAL_TYPE_GLOBAL);
    if (JS_IsException(boot))
        return init_failed("engine");

    /* Compile the function's module first, so a syntax error is told apart from an
     * error thrown while it runs. */
    JSValue module = eval_text(source, filename, JS_EVAL_TYPE_MODULE | JS_EVAL_FLAG_COMPILE_ONLY);
    if (JS_IsException(module))
        return init_failed("syntax");
    JS_FreeValue(ctx, module); /* stays registered under its name */

    /* A tiny module imports it by name, which links and evaluates it (and its
     * top-level code), and hands over its namespace. */
    static const char linker_prefix[] = "import * as ns from ";
    static const char linker_suffix[] = "; globalThis.__wasmlet_ns = ns;";
    JSValue quoted = JS_JSONStringify(ctx, filename_value, JS_UNDEFINED, JS_UNDEFINED);
    const char *quoted_text = JS_ToCString(ctx, quoted);
    size_t linker_len = strlen(linker_prefix) + strlen(quoted_text) + strlen(linker_suffix);
    char *linker = malloc(linker_len + 1);
    strcpy(linker, linker_prefix);
    strcat(linker, quoted_text);
    strcat(linker, linker_suffix);
    JS_FreeCString(ctx, quoted_text);
    JS_FreeValue(ctx, quoted);
    JSValue linked = JS_Eval(ctx, linker, linker_len, "wasmlet:entry", JS_EVAL_TYPE_MODULE);
    free(linker);
    if (JS_IsException(linked))
        return init_failed("load");
    JS_FreeValue(ctx, linked);
    if (run_jobs() < 0)
        return init_failed("load");

    JSValue ns = JS_GetPropertyStr(ctx, global, "__wasmlet_ns");
    JSValue args[2] = {ns, config};
    JSValue entry = JS_Call(ctx, boot, JS_UNDEFINED, 2, (JSValueConst *)args);
    JS_FreeValue(ctx, ns);
    if (JS_IsException(entry))
        return init_failed("boot");
    /* boot() returns {start, step, report} */
    start_fn = JS_GetPropertyStr(ctx, entry, "start");
    step_fn = JS_GetPropertyStr(ctx, entry, "step");
    JSValue report = JS_GetPropertyStr(ctx, entry, "report");
    JSValue report_text = JS_JSONStringify(ctx, report, JS_UNDEFINED, JS_UNDEFINED);
    const char *text = JS_ToCString(ctx, report_text);
    write_str(1, text ? text : "{\"ok\": true}");
    write_str(1, "\n");
    if (text)
        JS_FreeCString(ctx, text);
    JS_FreeValue(ctx, report_text);
    JS_FreeValue(ctx, report);
    JS_FreeValue(ctx, entry);

    JS_DeleteProperty(ctx, global, JS_NewAtom(ctx, "__wasmlet_ns"), 0);
    JS_FreeCString(ctx, filename);
    JS_FreeValue(ctx, filename_value);
    JS_FreeValue(ctx, config);
    JS_FreeValue(ctx, source);
    JS_FreeValue(ctx, prelude);
    JS_FreeValue(ctx, request);
    JS_FreeValue(ctx, boot);
    JS_FreeValue(ctx, global);
    JS_RunGC(rt);
    initialized = 1;
    return 0;
}

/* ---- one invocation --------------------------------------------------------------- */

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(void) {
    if (!initialized) {
        write_str(2, "wasmlet-js: this engine module has no function loaded\n");
        return EXIT_ENGINE_FAILED;
    }
    JS_UpdateStackTop(rt);
    if (__wasi_random_get((uint8_t *)&random_state, sizeof random_state) != 0 || !random_state)
        random_state = 0x9E3779B97F4A7C15ULL;

    JSValue started = JS_Call(ctx, start_fn, JS_UNDEFINED, 0, NULL);
    if (JS_IsException(started)) {
        JSValue exception = JS_GetException(ctx);
        print_exception(exception);
        return EXIT_ENGINE_FAILED;
    }
    JS_FreeValue(ctx, started);
    for (;;) {
        if (run_jobs() < 0) {
            JSValue exception = JS_GetException(ctx);
            print_exception(exception);
            return EXIT_HANDLER_FAILED;
        }
        JSValue answer = JS_Call(ctx, step_fn, JS_UNDEFINED, 0, NULL);
        if (JS_IsException(answer)) {
            JSValue exception = JS_GetException(ctx);
            print_exception(exception);
            return EXIT_HANDLER_FAILED;
        }
        int step;
        JS_ToInt32(ctx, &step, answer);
        JS_FreeValue(ctx, answer);
        if (step == STEP_DONE)
            return 0;
        if (step == STEP_FAILED)
            return EXIT_HANDLER_FAILED;
        if (step == STEP_IDLE) {
            write_str(2, "Uncaught Error: the handler's promise never settled "
                         "(nothing left to run and no timer pending)\n");
            return EXIT_HANDLER_FAILED;
        }
        if (step > 0)
            sleep_ms(step);
    }
}
