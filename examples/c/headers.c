/* headers: uses the wasmlet host imports to answer 201 with a header and a log line,
   and echoes the request body back inside a JSON object. */
#include <stdio.h>

#include "wasmlet.h"

int main(void) {
    char body[4096];
    size_t n = fread(body, 1, sizeof body, stdin);

    wasmlet_set_status(201);
    wasmlet_set_header_str("content-type", "application/json");
    wasmlet_set_header_str("x-powered-by", "wasmlet");
    wasmlet_log_str(WASMLET_LOG_INFO, "created");

    /* The body is expected to be JSON already; an empty body becomes null. */
    if (n == 0) {
        fputs("{\"created\":null}", stdout);
    } else {
        printf("{\"created\":%.*s}", (int)n, body);
    }
    return 0;
}
