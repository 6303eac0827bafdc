/* trap: an unexpected error in function code (a WebAssembly trap): 500 function_error. */
#include <stdio.h>

int main(void) {
    volatile int broken = 1;
    if (broken) {
        __builtin_trap();
    }
    puts("unreachable");
    return 0;
}
