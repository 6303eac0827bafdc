/* memory_hog: the spec's failure scenario 2. One malloc of 200 MB: over the 128 MB
   limit the growth is refused, malloc returns NULL and the function exits 1, which
   the host reports as 507 because it saw the refused growth. Under a larger limit
   it succeeds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    /* volatile so that clang cannot see the size and elide the allocation. */
    volatile size_t size = 200u * 1024u * 1024u;
    char *block = malloc(size);
    if (block == NULL) {
        fprintf(stderr, "malloc(%zu) failed\n", (size_t)size);
        return 1;
    }
    memset(block, 0x2a, size);
    printf("%d\n", block[size - 1]);
    free(block);
    return 0;
}
