/* Stack fixture for the unwinder tests: main -> a -> b -> c -> poll. */
#include <poll.h>

__attribute__((noinline)) int c(int x) {
	volatile int v = x;
	poll(0, 0, 30);
	return v + 1;
}

__attribute__((noinline)) int b(int x) { return c(x * 2) + 1; }

__attribute__((noinline)) int a(int x) { return b(x + 3) * 2; }

int main(int argc, char **argv) {
	(void)argv;
	return a(argc) == 12345;
}
