/*
 * ref_tput: throughput of the reference libvdestack (kernel network namespaces).
 *
 * usage: ref_tput SWITCH_PATH MIB
 *
 * Creates two stacks on the vde_switch at SWITCH_PATH (10.123.0.1/24 and
 * 10.123.0.2/24 on vde0), connects a TCP socket of the second to a listener of
 * the first, and sends MIB MiB one way in 64 KiB writes from a sender thread while
 * the main thread counts the bytes received. Prints one line:
 *   reference_mb_per_s=NNN.N bytes=N seconds=S.SSS busy_cpu_s=S.SS
 * (MB = 1e6 bytes; time from the first write to the last byte read; busy_cpu_s is
 * the CPU time the whole machine spent outside idle meanwhile, from /proc/stat:
 * the kernel's TCP and the tap forwarders count wherever they ran). On failure it
 * names the failing call and errno on stderr and exits 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <vdestack.h>

#define CHUNK (64 * 1024)
#define PORT 5001

struct sender {
	int fd;
	unsigned long long total;
	struct timespec start;
	int failed_errno;
	const char *failed_call;
};

/* Seconds of CPU time the machine has spent busy (not idle, not waiting for
 * I/O) since boot, from the first line of /proc/stat; -1 if unreadable. */
static double busy_cpu_seconds(void)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (f == NULL)
		return -1;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
		   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return -1;
	/* user nice system idle iowait irq softirq steal */
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / sysconf(_SC_CLK_TCK);
}

static void die(const char *call)
{
	int err = errno;
	fprintf(stderr, "ref_tput: %s failed: %s (errno %d)\n", call, strerror(err), err);
	exit(1);
}

static void *send_all(void *arg)
{
	struct sender *s = arg;
	static char buf[CHUNK];
	unsigned long long left = s->total;

	memset(buf, 0x5a, sizeof buf);
	clock_gettime(CLOCK_MONOTONIC, &s->start);
	while (left > 0) {
		size_t len = left < CHUNK ? (size_t)left : CHUNK;
		ssize_t n = write(s->fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			s->failed_errno = errno;
			s->failed_call = "write";
			return NULL;
		}
		left -= (unsigned long long)n;
	}
	if (shutdown(s->fd, SHUT_WR) < 0) {
		s->failed_errno = errno;
		s->failed_call = "shutdown";
	}
	return NULL;
}

static struct vdestack *make_stack(char *sw, const char *addr)
{
	char cmd[256];
	struct vdestack *stack = vde_addstack(sw, NULL);
	int status;

	if (stack == NULL)
		die("vde_addstack");
	snprintf(cmd, sizeof cmd,
		 "/bin/ip link set vde0 up;/bin/ip addr add %s/24 dev vde0", addr);
	status = vde_stackcmd(stack, cmd);
	if (status != 0) {
		fprintf(stderr, "ref_tput: vde_stackcmd(\"%s\") returned %d\n", cmd, status);
		exit(1);
	}
	return stack;
}

int main(int argc, char **argv)
{
	struct vdestack *server, *client;
	struct sockaddr_in sa;
	struct sender s;
	struct timespec end;
	pthread_t tid;
	static char buf[CHUNK];
	unsigned long long got = 0;
	char *endp;
	long mib;
	int lfd, afd, one = 1, rc;
	double secs, busy;

	if (argc != 3) {
		fprintf(stderr, "usage: %s SWITCH_PATH MIB\n", argv[0]);
		return 1;
	}
	mib = strtol(argv[2], &endp, 10);
	if (*argv[2] == '\0' || *endp != '\0' || mib <= 0) {
		fprintf(stderr, "ref_tput: MIB must be a positive integer, not \"%s\"\n", argv[2]);
		return 1;
	}

	server = make_stack(argv[1], "10.123.0.1");
	client = make_stack(argv[1], "10.123.0.2");

	lfd = vde_msocket(server, AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		die("vde_msocket (listener)");
	if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		die("setsockopt SO_REUSEADDR");
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(PORT);
	sa.sin_addr.s_addr = inet_addr("10.123.0.1");
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("bind");
	if (listen(lfd, 1) < 0)
		die("listen");

	memset(&s, 0, sizeof s);
	s.total = (unsigned long long)mib * 1024 * 1024;
	s.fd = vde_msocket(client, AF_INET, SOCK_STREAM, 0);
	if (s.fd < 0)
		die("vde_msocket (client)");
	if (connect(s.fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect");
	afd = accept(lfd, NULL, NULL);
	if (afd < 0)
		die("accept");

	busy = busy_cpu_seconds();
	rc = pthread_create(&tid, NULL, send_all, &s);
	if (rc != 0) {
		errno = rc;
		die("pthread_create");
	}
	while (got < s.total) {
		ssize_t n = read(afd, buf, sizeof buf);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("read");
		}
		if (n == 0) {
			fprintf(stderr, "ref_tput: read: end of stream after %llu of %llu bytes\n",
				got, s.total);
			return 1;
		}
		got += (unsigned long long)n;
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	busy = busy_cpu_seconds() - busy;
	rc = pthread_join(tid, NULL);
	if (rc != 0) {
		errno = rc;
		die("pthread_join");
	}
	if (s.failed_call != NULL) {
		errno = s.failed_errno;
		die(s.failed_call);
	}

	secs = (double)(end.tv_sec - s.start.tv_sec) + (end.tv_nsec - s.start.tv_nsec) / 1e9;
	printf("reference_mb_per_s=%.1f bytes=%llu seconds=%.3f busy_cpu_s=%.2f\n",
	       got / secs / 1e6, got, secs, busy);

	close(afd);
	close(s.fd);
	close(lfd);
	vde_delstack(client);
	vde_delstack(server);
	return 0;
}
