/* env_dump: shows what a guest can see of its host. Prints its environment, one
   NAME=value per line, then "no-fs" when it cannot open a host file (there are no
   preopened directories) or "fs" when it can. */
#include <stdio.h>

extern char **environ;

int main(void) {
    for (char **entry = environ; *entry != NULL; entry++) {
        puts(*entry);
    }
    FILE *file = fopen("/etc/passwd", "r");
    if (file == NULL) {
        puts("no-fs");
    } else {
        puts("fs");
        fclose(file);
    }
    return 0;
}
