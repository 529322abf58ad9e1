/* Benchmark probe: writes one byte to fd 3 and exits (spawn-to-first-byte). */
#include <unistd.h>
int main(void) { return write(3, "x", 1) == 1 ? 0 : 1; }
