/*
 * floor: what the vde_switch itself costs, below any TCP/IP stack.
 *
 * usage: floor WORKLOAD SWITCH_PATH N
 *
 *   rtt N    two ports of the switch bounce a 64-byte frame: one sends it, an echo
 *            thread on the other sends it back, N times: rtt_p50_us, rtt_p99_us.
 *            No stack's round trip over that switch can be shorter.
 *   open N   N x (vde_open + vde_close) on the switch: open_close_ms (median).
 *            Every stack opens and closes one such port. Then the same with
 *            another port held open all along, so that libvdeplug's plugin
 *            stays loaded: open_close_loaded_ms.
 *
 * Linked with libvdeplug only (not libvdestack, whose interposed calls would sit
 * under vde_open's). Output: one key=value per line. On failure it names the
 * failing call and errno on stderr and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libvdeplug.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOOL "floor"
#include "measure.h"

#define FRAME 64
/* IEEE 802 local experimental ethertype: no stack on the switch answers it. */
#define ETHERTYPE_HI 0x88
#define ETHERTYPE_LO 0xb5
/* Byte 14 of a frame: what it is; bytes 15..18: its sequence number. */
#define KIND_PING 1
#define KIND_STOP 2
#define KIND_HELLO 3

static const unsigned char mac_a[6] = { 0x02, 0, 0x5e, 0, 0, 1 };
static const unsigned char mac_b[6] = { 0x02, 0, 0x5e, 0, 0, 2 };

static VDECONN *open_port(char *sw, char *descr)
{
	VDECONN *conn = vde_open(sw, descr, NULL);
	if (conn == NULL)
		die("vde_open");
	return conn;
}

static void make_frame(unsigned char *f, const unsigned char *dst, const unsigned char *src,
		       int kind, uint32_t seq)
{
	memset(f, 0, FRAME);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = ETHERTYPE_HI;
	f[13] = ETHERTYPE_LO;
	f[14] = (unsigned char)kind;
	memcpy(f + 15, &seq, sizeof seq);
}

static void send_frame(VDECONN *conn, const unsigned char *f)
{
	if (vde_send(conn, f, FRAME, 0) != FRAME)
		die("vde_send");
}

/* Waits for the next frame of ours (the switch floods a frame to an unknown
 * address to every port, and vde_recv returns 1 for "drop this"). */
static void recv_frame(VDECONN *conn, unsigned char *f)
{
	for (;;) {
		ssize_t n = vde_recv(conn, f, VDE_ETHBUFSIZE, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("vde_recv");
		if (n >= FRAME && f[12] == ETHERTYPE_HI && f[13] == ETHERTYPE_LO)
			return;
	}
}

static void *echo(void *arg)
{
	VDECONN *b = arg;
	unsigned char f[VDE_ETHBUFSIZE];

	for (;;) {
		recv_frame(b, f);
		if (f[14] == KIND_STOP)
			return NULL;
		if (f[14] != KIND_PING)
			continue;
		memcpy(f, mac_a, 6);
		memcpy(f + 6, mac_b, 6);
		send_frame(b, f);
	}
}

static void rtt(char *sw, long n)
{
	VDECONN *a = open_port(sw, "floor-a"), *b = open_port(sw, "floor-b");
	unsigned char f[VDE_ETHBUFSIZE];
	double *samples = calloc(n, sizeof *samples);
	pthread_t tid;
	int rc;

	if (samples == NULL)
		die("calloc");
	/* The switch learns each port's address from a frame it sends, so that the
	 * pings and echoes go to one port, not to all. */
	make_frame(f, mac_b, mac_a, KIND_HELLO, 0);
	send_frame(a, f);
	recv_frame(b, f);
	make_frame(f, mac_a, mac_b, KIND_HELLO, 0);
	send_frame(b, f);
	recv_frame(a, f);

	rc = pthread_create(&tid, NULL, echo, b);
	if (rc != 0) {
		errno = rc;
		die("pthread_create");
	}
	for (long i = -100; i < n; i++) {
		double start = now();
		uint32_t seq = (uint32_t)(i + 100), got;
		make_frame(f, mac_b, mac_a, KIND_PING, seq);
		send_frame(a, f);
		do {
			recv_frame(a, f);
			memcpy(&got, f + 15, sizeof got);
		} while (f[14] != KIND_PING || got != seq);
		if (i >= 0)
			samples[i] = (now() - start) * 1e6;
	}
	make_frame(f, mac_b, mac_a, KIND_STOP, 0);
	send_frame(a, f);
	rc = pthread_join(tid, NULL);
	if (rc != 0) {
		errno = rc;
		die("pthread_join");
	}
	printf("rtt_p50_us=%.1f\n", percentile(samples, n, 0.50));
	printf("rtt_p99_us=%.1f\n", percentile(samples, n, 0.99));
	vde_close(a);
	vde_close(b);
	free(samples);
}

static void open_close(char *sw, long n)
{
	double *samples = calloc(n, sizeof *samples);

	if (samples == NULL)
		die("calloc");
	vde_close(open_port(sw, "floor"));
	for (long i = 0; i < n; i++) {
		double start = now();
		vde_close(open_port(sw, "floor"));
		samples[i] = (now() - start) * 1e3;
	}
	printf("open_close_ms=%.3f\n", percentile(samples, n, 0.50));

	/* libvdeplug loads its plugin at each vde_open and unloads it at the
	 * vde_close that leaves none open. A port held open meanwhile keeps the plugin
	 * loaded, so that what is timed is the port alone: what a program that keeps a
	 * link open pays, and what a library that keeps the plugin loaded can reach. */
	VDECONN *keep = open_port(sw, "floor-keep");
	for (long i = 0; i < n; i++) {
		double start = now();
		vde_close(open_port(sw, "floor"));
		samples[i] = (now() - start) * 1e3;
	}
	printf("open_close_loaded_ms=%.3f\n", percentile(samples, n, 0.50));
	vde_close(keep);
	free(samples);
}

int main(int argc, char **argv)
{
	long n;

	if (argc != 4) {
		fprintf(stderr, "usage: %s rtt|open SWITCH_PATH N\n", argv[0]);
		return 1;
	}
	n = count(argv[3], "N", 1);
	if (strcmp(argv[1], "rtt") == 0)
		rtt(argv[2], n);
	else if (strcmp(argv[1], "open") == 0)
		open_close(argv[2], n);
	else {
		fprintf(stderr, "floor: unknown workload %s\n", argv[1]);
		return 1;
	}
	return 0;
}
