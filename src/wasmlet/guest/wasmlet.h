/*
 * wasmlet.h - guest ABI v1 host imports for C functions.
 *
 * A wasmlet function is a WASI preview 1 command module: stdin is the request
 * payload, stdout the response body, stderr the function's log. The host
 * functions declared here are optional extras from import module "wasmlet";
 * a module that does not call them does not import them.
 *
 * Build (the header needs nothing but this directory on the include path):
 *
 *     python -m ziglang cc -target wasm32-wasi -O2 -s -I src/wasmlet/guest \
 *         hello.c -o hello.wasm
 *
 * Every pointer/length pair refers to the guest's exported linear memory.
 * Every function returns 0 on success and -1 when an argument is refused.
 * See docs/guest-abi.md for the full contract.
 */
#ifndef WASMLET_H
#define WASMLET_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WASMLET_ABI_VERSION 1

/* Levels for wasmlet_log. */
#define WASMLET_LOG_DEBUG 0
#define WASMLET_LOG_INFO 1
#define WASMLET_LOG_WARN 2
#define WASMLET_LOG_ERROR 3

#define WASMLET_IMPORT(name) \
    __attribute__((import_module("wasmlet"), import_name(name)))

/*
 * Records one structured log line (UTF-8; at most 8192 characters are kept)
 * at `level`, one of WASMLET_LOG_*. The lines of one invocation have a budget
 * as large as its stderr cap; past it they are dropped and the logs marked
 * truncated. Returns 0, or -1 for an unknown level or a range outside memory.
 */
WASMLET_IMPORT("log")
int32_t wasmlet_log(int32_t level, const char *ptr, size_t len);

/*
 * Sets the HTTP status of the response (100..599); the last call wins.
 * Returns 0, or -1 when `code` is out of range.
 */
WASMLET_IMPORT("set_status")
int32_t wasmlet_set_status(int32_t code);

/*
 * Adds a response header (at most 64 per invocation). The name must be an
 * HTTP token of 1..256 characters and not one the host owns (content-length,
 * transfer-encoding, connection, x-request-id); the value must not contain
 * CR, LF or NUL. Returns 0, or -1 when the header is refused.
 */
WASMLET_IMPORT("set_header")
int32_t wasmlet_set_header(const char *name_ptr, size_t name_len,
                           const char *value_ptr, size_t value_len);

/*
 * Runs one SQL statement on the application database, committed on its own.
 * `params` is a JSON array bound to $1, $2, ... (never spliced into the SQL);
 * an empty range means no parameters. Returns the length of the result JSON the
 * host now holds, or -1 for a range outside memory. The JSON is either
 *     {"rows": [{"column": value, ...}, ...], "row_count": n}
 * or
 *     {"error": {"type": "query_error" | "db_unavailable" | "timeout" |
 *                        "too_large" | "forbidden", "message": "..."}}
 * row_count is the number of rows affected by INSERT/UPDATE/DELETE, else the
 * number of rows returned. Fetch it with wasmlet_db_result.
 */
WASMLET_IMPORT("db_query")
int32_t wasmlet_db_query(const char *sql_ptr, size_t sql_len,
                         const char *params_ptr, size_t params_len);

/*
 * Copies the result JSON of the last wasmlet_db_query into `buf` (at most
 * `buf_len` bytes, no terminating NUL). Returns the number of bytes copied,
 * or -1 for a range outside memory.
 */
WASMLET_IMPORT("db_result")
int32_t wasmlet_db_result(char *buf_ptr, size_t buf_len);

/*
 * Sends one HTTP request through the host, to an origin the function's
 * `allowed_hosts` config allows. `head` is JSON:
 *     {"method": "POST", "url": "https://api.example.com/v1/x",
 *      "headers": {"content-type": "application/json"}}
 * ("headers" may also be a list of [name, value] pairs; "method" defaults to
 * GET; an optional "timeout_ms" ends the request sooner, with a "timeout" error);
 * `body` is sent as is (an empty range: no body). The guest waits, at most until
 * its own deadline, where the invocation ends as a timeout. Returns the length of the response head JSON the host
 * now holds, or -1 for a range outside memory. The head is either
 *     {"status":200,"body_length":5,"headers":[["content-type","text/plain"],...]}
 * (status and body_length always first) or
 *     {"error":{"type":"forbidden_host" | "connect_failed" | "timeout" |
 *                       "too_large" | "invalid_request","message":"..."}}
 * Fetch it with wasmlet_http_result and the body with wasmlet_http_body.
 * Redirects are not followed: a 3xx comes back as it is.
 */
WASMLET_IMPORT("http_request")
int32_t wasmlet_http_request(const char *head_ptr, size_t head_len,
                             const void *body_ptr, size_t body_len);

/* Copies the head JSON of the last wasmlet_http_request (no NUL); the number of
   bytes copied, or -1 for a range outside memory. */
WASMLET_IMPORT("http_result")
int32_t wasmlet_http_result(char *buf_ptr, size_t buf_len);

/* Copies the body of the last response (at most buf_len bytes); the number of
   bytes copied, or -1 for a range outside memory. */
WASMLET_IMPORT("http_body")
int32_t wasmlet_http_body(void *buf_ptr, size_t buf_len);

#undef WASMLET_IMPORT

/*
 * Runs `sql` with `params_json` (NUL-terminated; NULL for none) and returns the
 * result JSON in a malloc'd, NUL-terminated buffer the caller frees, or NULL
 * when the arguments were refused or memory ran out.
 */
static inline char *wasmlet_query(const char *sql, const char *params_json) {
    int32_t size = wasmlet_db_query(sql, strlen(sql), params_json ? params_json : "",
                                    params_json ? strlen(params_json) : 0);
    if (size < 0) {
        return NULL;
    }
    char *result = (char *)malloc((size_t)size + 1);
    if (result == NULL) {
        return NULL;
    }
    int32_t copied = wasmlet_db_result(result, (size_t)size);
    result[copied < 0 ? 0 : copied] = '\0';
    return result;
}

/* Whether a result JSON from wasmlet_query is an error. */
static inline int wasmlet_query_failed(const char *result) {
    return result == NULL || strncmp(result, "{\"error\"", 8) == 0;
}

/* One response of wasmlet_http. */
typedef struct {
    char *head;      /* the head JSON, NUL-terminated: the response's, or {"error": ...} */
    int32_t status;  /* the HTTP status, or 0 when the request failed */
    char *body;      /* body_len bytes and a NUL (NULL when the request failed) */
    size_t body_len;
} wasmlet_http_response;

static inline long wasmlet__json_number(const char *json, const char *key) {
    const char *at = strstr(json, key);
    return at ? strtol(at + strlen(key), NULL, 10) : 0;
}

/*
 * Sends `request_json` (the head, NUL-terminated) with `body_len` bytes of
 * `body` and fills `response`. Returns 0 when the upstream answered (whatever its
 * status), 1 when the request failed (response->head holds the error JSON), -1
 * when the arguments were refused or memory ran out. Free with wasmlet_http_free.
 */
static inline int wasmlet_http(const char *request_json, const void *body, size_t body_len,
                               wasmlet_http_response *response) {
    memset(response, 0, sizeof *response);
    int32_t size = wasmlet_http_request(request_json, strlen(request_json), body, body_len);
    if (size < 0 || (response->head = (char *)malloc((size_t)size + 1)) == NULL) {
        return -1;
    }
    int32_t copied = wasmlet_http_result(response->head, (size_t)size);
    response->head[copied < 0 ? 0 : copied] = '\0';
    if (strncmp(response->head, "{\"error\"", 8) == 0) {
        return 1;
    }
    response->status = (int32_t)wasmlet__json_number(response->head, "\"status\":");
    size_t length = (size_t)wasmlet__json_number(response->head, "\"body_length\":");
    if ((response->body = (char *)malloc(length + 1)) == NULL) {
        return -1;
    }
    int32_t read = wasmlet_http_body(response->body, length);
    response->body_len = read < 0 ? 0 : (size_t)read;
    response->body[response->body_len] = '\0';
    return 0;
}

static inline void wasmlet_http_free(wasmlet_http_response *response) {
    free(response->head);
    free(response->body);
    memset(response, 0, sizeof *response);
}

/* wasmlet_log for a NUL-terminated string. */
static inline int32_t wasmlet_log_str(int32_t level, const char *message) {
    return wasmlet_log(level, message, strlen(message));
}

/* wasmlet_set_header for NUL-terminated strings. */
static inline int32_t wasmlet_set_header_str(const char *name, const char *value) {
    return wasmlet_set_header(name, strlen(name), value, strlen(value));
}

#ifdef __cplusplus
}
#endif

#endif /* WASMLET_H */
