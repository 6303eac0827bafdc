/* infinite_loop: the spec's failure scenario 1. Never returns; the timeout ends it (504). */
int main(void) {
    /* A side-effect-free infinite loop is undefined behaviour in C; the volatile
       store keeps it a real loop that the optimizer must preserve. */
    volatile unsigned long counter = 0;
    for (;;) {
        counter++;
    }
}
