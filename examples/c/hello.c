/* hello: writes "Hello, wasmlet!" to stdout, which becomes the response body. */
#include <stdio.h>

int main(void) {
    fputs("Hello, wasmlet!", stdout);
    return 0;
}
