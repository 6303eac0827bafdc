/* stack_overflow: unbounded recursion. The wasm stack is exhausted and the call
   traps (500 function_error), which is not a memory limit (507). */
#include <stdio.h>

/* Always true, but the compiler cannot know it, so it cannot prove the recursion
   infinite (and warn, or assume it away). */
static volatile int keep_going = 1;

/* The volatile frame and the use of the result after the call keep this a real,
   non-tail recursion that the optimizer can neither turn into a loop nor fold. */
static int depth(int n) {
    volatile char frame[64];
    frame[n & 63] = (char)n;
    if (!keep_going) {
        return 0;
    }
    return depth(n + 1) + frame[n & 63];
}

int main(void) {
    volatile int start = 0;
    printf("%d\n", depth(start));
    return 0;
}
