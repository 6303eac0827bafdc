/* db_exec: runs the SQL on the first line of the payload with the JSON array of
   parameters on the second, and answers with the result JSON. A query error is
   logged and the function exits 1 (500 host_function_error). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasmlet.h"

static char *read_all(void) {
    size_t size = 0, cap = 4096;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + size, 1, cap - size - 1, stdin)) > 0) {
        size += n;
        if (cap - size < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    if (buf) {
        buf[size] = '\0';
    }
    return buf;
}

int main(void) {
    char *payload = read_all();
    if (payload == NULL) {
        return 2;
    }
    char *params = strchr(payload, '\n');
    if (params != NULL) {
        *params++ = '\0';
    }
    char *result = wasmlet_query(payload, params);
    if (wasmlet_query_failed(result)) {
        fprintf(stderr, "query failed: %s\n", result ? result : "(refused)");
        return 1;
    }
    fputs(result, stdout);
    free(result);
    free(payload);
    return 0;
}
