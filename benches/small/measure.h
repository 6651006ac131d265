/*
 * What small.c and floor.c share: failing loudly, the clock, argument counts and
 * percentiles. Each defines TOOL, its name in messages, before including this.
 */
#ifndef SMALL_MEASURE_H
#define SMALL_MEASURE_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Names the failing call and errno on stderr and exits 1. */
static void die(const char *call)
{
	int err = errno;
	fprintf(stderr, TOOL ": %s failed: %s (errno %d)\n", call, strerror(err), err);
	exit(1);
}

/* Seconds on the monotonic clock. */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The count `arg` (named `what` in the message), or exit 1 when it is not a
 * whole number of at least `least`. */
static long count(const char *arg, const char *what, long least)
{
	char *end;
	long v = strtol(arg, &end, 10);
	if (*arg == '\0' || *end != '\0' || v < least) {
		fprintf(stderr, TOOL ": %s must be a whole number >= %ld, not \"%s\"\n", what, least,
			arg);
		exit(1);
	}
	return v;
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The value below which `fraction` of the n samples lie (sorts them). */
static double percentile(double *samples, long n, double fraction)
{
	long i = (long)(fraction * n);
	qsort(samples, n, sizeof *samples, compare_doubles);
	return samples[i < n ? i : n - 1];
}

#endif
