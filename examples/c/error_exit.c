/* error_exit: logs a reason on stderr and exits with code 1: 500 function_error. */
#include <stdio.h>

int main(void) {
    fputs("Email service down\n", stderr);
    return 1;
}
