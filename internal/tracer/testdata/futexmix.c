// futexmix: four threads hand one mutex around with short critical
// sections while two pool threads wait on a condition variable fed by a
// producer. Each thread prints its role and tid, then all wait for a line
// on stdin, run for the given milliseconds and exit.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t start;
static volatile int running = 1;
static int queued;
static unsigned long counter;

static void hello(const char *role)
{
	flockfile(stdout);
	printf("%s %ld\n", role, (long)syscall(SYS_gettid));
	fflush(stdout);
	funlockfile(stdout);
}

static void *contender(void *arg)
{
	(void)arg;
	hello("mutex");
	pthread_barrier_wait(&start);
	while (running) {
		pthread_mutex_lock(&lock);
		for (int i = 0; i < 200; i++)
			counter++;
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

static void *waiter(void *arg)
{
	(void)arg;
	hello("cond");
	pthread_barrier_wait(&start);
	pthread_mutex_lock(&qlock);
	while (running) {
		while (!queued && running)
			pthread_cond_wait(&qcond, &qlock);
		if (queued)
			queued--;
	}
	pthread_mutex_unlock(&qlock);
	return NULL;
}

int main(int argc, char **argv)
{
	long ms = argc > 1 ? atol(argv[1]) : 1000;
	pthread_t t[6];
	char line[8];

	pthread_barrier_init(&start, NULL, 7);
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, contender, NULL);
	for (int i = 4; i < 6; i++)
		pthread_create(&t[i], NULL, waiter, NULL);
	usleep(100000);
	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	pthread_barrier_wait(&start);
	struct timespec tick = {0, 2000000};
	for (long n = 0; n < ms / 2; n++) {
		nanosleep(&tick, NULL);
		pthread_mutex_lock(&qlock);
		queued++;
		pthread_cond_signal(&qcond);
		pthread_mutex_unlock(&qlock);
	}
	running = 0;
	pthread_mutex_lock(&qlock);
	pthread_cond_broadcast(&qcond);
	pthread_mutex_unlock(&qlock);
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	printf("done %lu\n", counter);
	return 0;
}
