/* on_user_created: the spec's failure scenario 3, a database-trigger function.
   The event JSON (type, table, schema, record, old_record, id) arrives on stdin.
   It runs the statement in env PROFILE_SQL with the event as $1 (for example an
   INSERT INTO profiles taking the new user's id from the event), which commits
   on its own, and then fails the way the spec's example does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasmlet.h"

int main(void) {
    static char event[65536];
    size_t size = fread(event, 1, sizeof event - 1, stdin);
    event[size] = '\0';

    const char *sql = getenv("PROFILE_SQL");
    if (sql != NULL) {
        /* $1 is the whole event: a JSON array holding one JSON string. */
        size_t cap = size * 2 + 8;
        char *params = malloc(cap);
        size_t at = 0;
        params[at++] = '[';
        params[at++] = '"';
        for (size_t i = 0; i < size; i++) {
            char c = event[i];
            if (c == '"' || c == '\\') {
                params[at++] = '\\';
            }
            params[at++] = c;
        }
        params[at++] = '"';
        params[at++] = ']';
        params[at] = '\0';
        char *result = wasmlet_query(sql, params);
        if (wasmlet_query_failed(result)) {
            fprintf(stderr, "profile insert failed: %s\n", result ? result : "(refused)");
            return 1;
        }
        wasmlet_log_str(WASMLET_LOG_INFO, "profile inserted");
    }
    if (getenv("SUCCEED") == NULL) {
        fprintf(stderr, "Email service down\n");
        return 1;
    }
    return 0;
}
