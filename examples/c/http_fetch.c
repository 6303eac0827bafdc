/* http_fetch: sends the request whose head JSON is the payload's first line, with
   the rest of the payload as its body, and answers with the upstream's body and
   status. When the host refuses or the upstream fails, it answers 502 with the
   error JSON it saw, or, with ON_ERROR=fail in its env, exits 1 (the invocation
   fails with host_function_error; connect_failed and timeout are retriable). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasmlet.h"

static char *read_all(size_t *size) {
    size_t cap = 4096;
    char *buf = malloc(cap);
    size_t n;
    *size = 0;
    while (buf && (n = fread(buf + *size, 1, cap - *size - 1, stdin)) > 0) {
        *size += n;
        if (cap - *size < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    if (buf) {
        buf[*size] = '\0';
    }
    return buf;
}

int main(void) {
    size_t size;
    char *payload = read_all(&size);
    if (payload == NULL) {
        return 2;
    }
    char *body = strchr(payload, '\n');
    size_t body_len = 0;
    if (body != NULL) {
        *body++ = '\0';
        body_len = size - (size_t)(body - payload);
    }
    wasmlet_http_response response;
    int failed = wasmlet_http(payload, body, body_len, &response);
    if (failed < 0) {
        return 2;
    }
    if (failed) {
        wasmlet_log_str(WASMLET_LOG_ERROR, response.head);
        const char *on_error = getenv("ON_ERROR");
        if (on_error != NULL && strcmp(on_error, "fail") == 0) {
            return 1;
        }
        wasmlet_set_status(502);
        wasmlet_set_header_str("content-type", "application/json");
        fputs(response.head, stdout);
    } else {
        wasmlet_set_status(response.status);
        fwrite(response.body, 1, response.body_len, stdout);
    }
    wasmlet_http_free(&response);
    free(payload);
    return 0;
}
