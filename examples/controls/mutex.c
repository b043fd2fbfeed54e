// Positive control for lock-contention: THREADS threads take turns on one
// pthread mutex. Each holds it for a short critical section, CS_US of CPU
// work and a SLEEP_US wait (a write to a slow device, say: the classic lock
// held across I/O), then works WORK_US outside it. The wait makes the
// contention independent of how busy the machine's CPUs are. Runs for
// SECONDS.
//
//   cc -O2 -pthread -o mutex mutex.c && ./mutex [THREADS SECONDS CS_US SLEEP_US WORK_US]
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t shared;
static int cs_us, work_us, sleep_us;
static struct timespec deadline;

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// spin burns about us microseconds of CPU.
static uint64_t spin(int us, uint64_t x) {
	int64_t end = now_ns() + (int64_t)us * 1000;
	while (now_ns() < end) {
		for (int i = 0; i < 64; i++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	}
	return x;
}

static void *worker(void *arg) {
	uint64_t x = (uintptr_t)arg;
	int64_t end = (int64_t)deadline.tv_sec * 1000000000 + deadline.tv_nsec;
	while (now_ns() < end) {
		pthread_mutex_lock(&lock);
		shared = spin(cs_us, shared + x);
		if (sleep_us > 0) {
			struct timespec ts = {0, (long)sleep_us * 1000};
			nanosleep(&ts, NULL);
		}
		pthread_mutex_unlock(&lock);
		x = spin(work_us, x);
	}
	return NULL;
}

int main(int argc, char **argv) {
	int threads = argc > 1 ? atoi(argv[1]) : 4;
	int seconds = argc > 2 ? atoi(argv[2]) : 8;
	cs_us = argc > 3 ? atoi(argv[3]) : 50;
	sleep_us = argc > 4 ? atoi(argv[4]) : 50;
	work_us = argc > 5 ? atoi(argv[5]) : 100;
	if (threads < 1 || threads > 64 || seconds < 1 || cs_us < 0 || work_us < 0 || sleep_us < 0 || sleep_us > 999999) {
		fprintf(stderr, "usage: %s [THREADS SECONDS CS_US SLEEP_US WORK_US]\n", argv[0]);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += seconds;
	pthread_t tids[64];
	for (int i = 0; i < threads; i++) {
		if (pthread_create(&tids[i], NULL, worker, (void *)(uintptr_t)(i + 1)) != 0) {
			perror("pthread_create");
			return 1;
		}
	}
	for (int i = 0; i < threads; i++) pthread_join(tids[i], NULL);
	printf("%llu\n", (unsigned long long)shared);
	return 0;
}
