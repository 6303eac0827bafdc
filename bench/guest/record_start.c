/* record_start: the database-trigger function of bench/bench_trigger.py.

   The first thing it does is read the wall clock (WASI CLOCK_REALTIME, the host's
   real time), so the benchmark can tell when the function started. Then it reads the
   event JSON from stdin and runs the statement in env RECORD_SQL once, with the
   whole event as $1 (a JSON string) and the start time in microseconds since the
   epoch as $2 (a JSON integer). The statement takes what it needs from the event
   (id, record.id, committed_at) with the database's own JSON functions. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "wasmlet.h"

int main(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long started_us = (long long)now.tv_sec * 1000000LL + now.tv_nsec / 1000;

    static char event[65536];
    size_t size = fread(event, 1, sizeof event - 1, stdin);
    event[size] = '\0';

    const char *sql = getenv("RECORD_SQL");
    if (sql == NULL) {
        fprintf(stderr, "RECORD_SQL is not set\n");
        return 2;
    }
    /* ["<event, escaped as a JSON string>", started_us] */
    static char params[6 * sizeof event + 64];
    size_t at = 0;
    params[at++] = '[';
    params[at++] = '"';
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)event[i];
        if (c == '"' || c == '\\') {
            params[at++] = '\\';
            params[at++] = (char)c;
        } else if (c < 0x20) {
            at += (size_t)snprintf(params + at, 7, "\\u%04x", c);
        } else {
            params[at++] = (char)c;
        }
    }
    at += (size_t)snprintf(params + at, sizeof params - at, "\",%lld]", started_us);

    char *result = wasmlet_query(sql, params);
    if (wasmlet_query_failed(result)) {
        fprintf(stderr, "record failed: %s\n", result ? result : "(refused)");
        return 1;
    }
    return 0;
}
