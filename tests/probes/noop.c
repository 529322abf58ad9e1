/* Benchmark probe: does nothing and exits 0 (spawn-to-exit). */
int main(void) { return 0; }
