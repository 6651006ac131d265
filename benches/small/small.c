/*
 * small: many sockets, short connections, small messages, on one libvdestack.
 *
 * usage: small WORKLOAD SWITCH_PATH ARGS...
 *
 *   cycles N          N x (vde_msocket + connect + accept + close both) on two
 *                     empty stacks: cycles_per_s
 *   held N CYCLES     open N connections between two stacks and hold them:
 *                     open_s, open_first_half_s, open_second_half_s,
 *                     conn_user_kb, conn_kernel_kb (memory per connection, both
 *                     ends); then one byte over each (written on the client end,
 *                     read on the server end, one connection after the other):
 *                     byte_each_s; then CYCLES cycles as above: cycles_per_s
 *   rtt N             N 64-byte request/response round trips over one
 *                     connection with TCP_NODELAY (an echo thread serves):
 *                     rtt_p50_us, rtt_p99_us
 *   stacks N IDLE     N stacks created and configured: stacks_s; then, when
 *                     IDLE > 0, the CPU they take over IDLE seconds of doing
 *                     nothing: idle_cpu_percent (of one core); and the memory
 *                     each holds: stack_user_kb, stack_kernel_kb
 *   lifecycle N       N x (vde_addstack + vde_stackcmd + vde_delstack):
 *                     lifecycle_ms (median)
 *
 * Every stack is on the vde_switch at SWITCH_PATH, its interface vde0 up with an
 * address in 10.123.0.0/16. The program is compiled once against Debian's
 * vdestack.h and run on whichever libvdestack.so.0 the dynamic linker finds: it
 * first prints library=PATH, the file its vde_addstack came from, so that the
 * caller can check which one that was.
 *
 * Output: one key=value per line (times in the units the names say). Memory is
 * counted as "user" (the process's RSS plus the private memory of helper
 * processes it forked, as the reference does one per stack) and "kernel" (the
 * machine's SUnreclaim + KernelStack + PageTables + Percpu from /proc/meminfo:
 * the reference's namespaces, taps and sockets live there; the reclaimable part
 * of the slab is left out, being mostly file caches that other work on the
 * machine moves). CPU is the time the process's threads (but the one measuring)
 * and its helper processes ran, from schedstat.
 *
 * On failure it names the failing call and errno on stderr and exits 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <vdestack.h>

#define TOOL "small"
#include "measure.h"

#define PORT 5001
#define MESSAGE 64
#define SERVER_ADDR "10.123.0.1"
#define CLIENT_ADDR "10.123.0.2"

static char *switch_path;

/* ---- the library under test --------------------------------------------- */

static void print_library(void)
{
	Dl_info info;
	/* dlsym, not &vde_addstack: the address of the definition, never a PLT stub in
	 * the executable. */
	void *fn = dlsym(RTLD_DEFAULT, "vde_addstack");
	if (fn == NULL || dladdr(fn, &info) == 0 || info.dli_fname == NULL) {
		fprintf(stderr, "small: cannot tell which library defines vde_addstack\n");
		exit(1);
	}
	printf("library=%s\n", info.dli_fname);
	fflush(stdout);
}

/* ---- stacks and connections --------------------------------------------- */

static struct vdestack *make_stack(const char *addr)
{
	char cmd[256];
	struct vdestack *stack = vde_addstack(switch_path, NULL);
	int status;

	if (stack == NULL)
		die("vde_addstack");
	snprintf(cmd, sizeof cmd, "/bin/ip link set vde0 up;/bin/ip addr add %s/16 dev vde0", addr);
	status = vde_stackcmd(stack, cmd);
	if (status != 0) {
		fprintf(stderr, "small: vde_stackcmd(\"%s\") returned %d\n", cmd, status);
		exit(1);
	}
	return stack;
}

/* The address of the i-th of many stacks, in 10.123.0.0/16 past the two above. */
static void nth_addr(long i, char *out, size_t len)
{
	i += 3;
	snprintf(out, len, "10.123.%ld.%ld", i / 250, i % 250 + 1);
}

static struct sockaddr_in server_address(void)
{
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(PORT);
	sa.sin_addr.s_addr = inet_addr(SERVER_ADDR);
	return sa;
}

static int listen_on(struct vdestack *server)
{
	struct sockaddr_in sa = server_address();
	int one = 1;
	int fd = vde_msocket(server, AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		die("vde_msocket (listener)");
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		die("setsockopt SO_REUSEADDR");
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("bind");
	if (listen(fd, 128) < 0)
		die("listen");
	return fd;
}

/* One new connection from `client` to the listener: *c the client end, *s the
 * server end. */
static void connect_pair(struct vdestack *client, int lfd, int *c, int *s)
{
	struct sockaddr_in sa = server_address();

	*c = vde_msocket(client, AF_INET, SOCK_STREAM, 0);
	if (*c < 0)
		die("vde_msocket (client)");
	if (connect(*c, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect");
	*s = accept(lfd, NULL, NULL);
	if (*s < 0)
		die("accept");
}

static void close_or_die(int fd)
{
	if (close(fd) < 0)
		die("close");
}

/* n connect/accept/close cycles per second. */
static double cycles_per_second(struct vdestack *client, int lfd, long n)
{
	double start = now();
	int c, s;

	for (long i = 0; i < n; i++) {
		connect_pair(client, lfd, &c, &s);
		close_or_die(c);
		close_or_die(s);
	}
	return n / (now() - start);
}

/* The two stacks every connection workload uses, their listener, and one
 * connection made and closed so that ARP is done before anything is timed. */
static int two_stacks(struct vdestack **server, struct vdestack **client)
{
	int lfd;

	*server = make_stack(SERVER_ADDR);
	*client = make_stack(CLIENT_ADDR);
	lfd = listen_on(*server);
	cycles_per_second(*client, lfd, 1);
	return lfd;
}

/* ---- what the process and its helpers use ------------------------------- */

/* The kB value of the line starting with `key` in `path`; 0 when absent. */
static double kb_field(const char *path, const char *key)
{
	char line[256];
	double v = 0;
	size_t klen = strlen(key);
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, key, klen) == 0) {
			v = strtod(line + klen, NULL);
			break;
		}
	fclose(f);
	return v;
}

/* Calls fn(pid, arg) for each live process whose parent is this one (the
 * reference forks a helper per stack). */
static void for_each_child(void (*fn)(long pid, void *arg), void *arg)
{
	char path[64], buf[512];
	pid_t self = getpid();
	DIR *proc = opendir("/proc");
	struct dirent *e;

	if (proc == NULL)
		die("opendir /proc");
	while ((e = readdir(proc)) != NULL) {
		char *close_paren;
		long pid = strtol(e->d_name, NULL, 10);
		int ppid;
		FILE *f;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(buf, sizeof buf, f) == NULL) {
			fclose(f);
			continue;
		}
		fclose(f);
		/* pid (comm) state ppid: comm may hold spaces and parentheses. */
		close_paren = strrchr(buf, ')');
		if (close_paren != NULL && sscanf(close_paren + 1, " %*c %d", &ppid) == 1 &&
		    ppid == self)
			fn(pid, arg);
	}
	closedir(proc);
}

static void add_private_kb(long pid, void *arg)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/smaps_rollup", pid);
	*(double *)arg += kb_field(path, "Private_Clean:") + kb_field(path, "Private_Dirty:");
}

struct memory {
	double user_kb;
	double kernel_kb;
};

static struct memory memory_now(void)
{
	struct memory m;
	double helpers = 0;

	for_each_child(add_private_kb, &helpers);
	m.user_kb = kb_field("/proc/self/status", "VmRSS:") + helpers;
	m.kernel_kb = kb_field("/proc/meminfo", "SUnreclaim:") + kb_field("/proc/meminfo", "KernelStack:") +
		      kb_field("/proc/meminfo", "PageTables:") + kb_field("/proc/meminfo", "Percpu:");
	return m;
}

static void print_memory_per(const char *what, struct memory before, struct memory after, long n)
{
	printf("%s_user_kb=%.2f\n", what, (after.user_kb - before.user_kb) / n);
	printf("%s_kernel_kb=%.2f\n", what, (after.kernel_kb - before.kernel_kb) / n);
}

/* Adds the nanoseconds every thread of process `pid` has run (schedstat's first
 * field) to *(double *)arg, leaving out the calling thread: it only measures. */
static void add_cpu_ns(long pid, void *arg)
{
	char self[32];
	char path[320];
	DIR *tasks;
	struct dirent *e;

	snprintf(path, sizeof path, "/proc/%ld/task", pid);
	snprintf(self, sizeof self, "%d", gettid());
	tasks = opendir(path);
	if (tasks == NULL)
		return;
	while ((e = readdir(tasks)) != NULL) {
		double ns;
		FILE *f;

		if (e->d_name[0] == '.' || strcmp(e->d_name, self) == 0)
			continue;
		snprintf(path, sizeof path, "/proc/%ld/task/%s/schedstat", pid, e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fscanf(f, "%lf", &ns) == 1)
			*(double *)arg += ns;
		fclose(f);
	}
	closedir(tasks);
}

static double cpu_ns_now(void)
{
	double ns = 0;
	add_cpu_ns(getpid(), &ns);
	for_each_child(add_cpu_ns, &ns);
	return ns;
}

/* ---- workloads ------------------------------------------------------------ */

static void cycles(long n)
{
	struct vdestack *server, *client;
	int lfd = two_stacks(&server, &client);

	printf("cycles_per_s=%.1f\n", cycles_per_second(client, lfd, n));
	close_or_die(lfd);
	vde_delstack(client);
	vde_delstack(server);
}

static void held(long n, long cycle_count)
{
	struct vdestack *server, *client;
	int lfd = two_stacks(&server, &client);
	int *c = calloc(n, sizeof *c), *s = calloc(n, sizeof *s);
	struct memory before, after;
	double start, half = 0, end;

	if (c == NULL || s == NULL)
		die("calloc");
	before = memory_now();
	start = now();
	for (long i = 0; i < n; i++) {
		if (i == n / 2)
			half = now();
		connect_pair(client, lfd, &c[i], &s[i]);
	}
	end = now();
	after = memory_now();
	printf("open_s=%.3f\nopen_first_half_s=%.3f\nopen_second_half_s=%.3f\n", end - start,
	       half - start, end - half);
	print_memory_per("conn", before, after, n);

	start = now();
	for (long i = 0; i < n; i++) {
		char byte = 'x';
		ssize_t got;
		if (write(c[i], &byte, 1) != 1)
			die("write (one byte)");
		do
			got = read(s[i], &byte, 1);
		while (got < 0 && errno == EINTR);
		if (got != 1) {
			if (got == 0)
				errno = ECONNRESET;
			die("read (one byte)");
		}
	}
	printf("byte_each_s=%.3f\n", now() - start);

	printf("cycles_per_s=%.1f\n", cycles_per_second(client, lfd, cycle_count));
	for (long i = 0; i < n; i++) {
		close_or_die(c[i]);
		close_or_die(s[i]);
	}
	free(c);
	free(s);
	close_or_die(lfd);
	vde_delstack(client);
	vde_delstack(server);
}

/* Reads exactly len bytes; 0 at a clean end of stream before the first byte. */
static int read_all(int fd, char *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = ECONNRESET;
			return got == 0 ? 0 : -1;
		}
		got += (size_t)n;
	}
	return 1;
}

static void *echo(void *arg)
{
	int fd = *(int *)arg;
	char buf[MESSAGE];
	int rc;

	while ((rc = read_all(fd, buf, sizeof buf)) == 1)
		if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
			die("write (echo)");
	if (rc < 0)
		die("read (echo)");
	return NULL;
}

static void rtt(long n)
{
	struct vdestack *server, *client;
	int lfd = two_stacks(&server, &client);
	int c, s, one = 1, rc;
	char buf[MESSAGE];
	double *samples = calloc(n, sizeof *samples);
	pthread_t tid;

	if (samples == NULL || n == 0)
		die("calloc");
	connect_pair(client, lfd, &c, &s);
	if (setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
	    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
		die("setsockopt TCP_NODELAY");
	rc = pthread_create(&tid, NULL, echo, &s);
	if (rc != 0) {
		errno = rc;
		die("pthread_create");
	}
	memset(buf, 0x5a, sizeof buf);
	/* The first round trips warm caches and congestion state on both sides. */
	for (long i = -100; i < n; i++) {
		double start = now();
		if (write(c, buf, sizeof buf) != (ssize_t)sizeof buf)
			die("write (request)");
		if (read_all(c, buf, sizeof buf) != 1)
			die("read (response)");
		if (i >= 0)
			samples[i] = (now() - start) * 1e6;
	}
	printf("rtt_p50_us=%.1f\n", percentile(samples, n, 0.50));
	printf("rtt_p99_us=%.1f\n", percentile(samples, n, 0.99));
	close_or_die(c);
	rc = pthread_join(tid, NULL);
	if (rc != 0) {
		errno = rc;
		die("pthread_join");
	}
	close_or_die(s);
	close_or_die(lfd);
	free(samples);
	vde_delstack(client);
	vde_delstack(server);
}

static void stacks(long n, long idle_seconds)
{
	struct vdestack **all = calloc(n, sizeof *all);
	struct memory before, after;
	char addr[32];
	double start;

	if (all == NULL)
		die("calloc");
	/* One stack made and deleted first, so that one-time costs of the library
	 * (threads, allocator arenas, loading helpers) do not count as per stack. */
	vde_delstack(make_stack(SERVER_ADDR));
	before = memory_now();
	start = now();
	for (long i = 0; i < n; i++) {
		nth_addr(i, addr, sizeof addr);
		all[i] = make_stack(addr);
	}
	printf("stacks_s=%.3f\n", now() - start);
	fflush(stdout);
	if (idle_seconds > 0) {
		struct timespec settle = { 1, 0 }, window = { idle_seconds, 0 };
		double cpu;
		/* Not synchronisation: a second for the set-up's own traffic (the
		 * reference's kernel sends IPv6 router solicitations and DAD) to pass,
		 * then the window measured. */
		nanosleep(&settle, NULL);
		cpu = cpu_ns_now();
		nanosleep(&window, NULL);
		cpu = cpu_ns_now() - cpu;
		printf("idle_cpu_percent=%.4f\n", cpu / 1e9 / idle_seconds * 100);
		after = memory_now();
		print_memory_per("stack", before, after, n);
	}
	for (long i = 0; i < n; i++)
		vde_delstack(all[i]);
	free(all);
}

static void lifecycle(long n)
{
	double *samples = calloc(n, sizeof *samples);

	if (samples == NULL || n == 0)
		die("calloc");
	vde_delstack(make_stack(SERVER_ADDR));
	for (long i = 0; i < n; i++) {
		double start = now();
		vde_delstack(make_stack(SERVER_ADDR));
		samples[i] = (now() - start) * 1e3;
	}
	printf("lifecycle_ms=%.3f\n", percentile(samples, n, 0.50));
	free(samples);
}

/* Each connection costs two descriptors per end here (and with our library two
 * more in the process for the pump's ends): take all the process may have. */
static void raise_fd_limit(void)
{
	struct rlimit lim;
	if (getrlimit(RLIMIT_NOFILE, &lim) < 0)
		die("getrlimit");
	lim.rlim_cur = lim.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
		die("setrlimit");
}

int main(int argc, char **argv)
{
	const char *workload;

	if (argc < 4) {
		fprintf(stderr, "usage: %s cycles|held|rtt|stacks|lifecycle SWITCH_PATH N [M]\n",
			argv[0]);
		return 1;
	}
	workload = argv[1];
	switch_path = argv[2];
	raise_fd_limit();
	print_library();
	if (strcmp(workload, "cycles") == 0 && argc == 4)
		cycles(count(argv[3], "N", 1));
	else if (strcmp(workload, "held") == 0 && argc == 5)
		held(count(argv[3], "N", 1), count(argv[4], "CYCLES", 1));
	else if (strcmp(workload, "rtt") == 0 && argc == 4)
		rtt(count(argv[3], "N", 1));
	else if (strcmp(workload, "stacks") == 0 && argc == 5)
		stacks(count(argv[3], "N", 1), count(argv[4], "IDLE", 0));
	else if (strcmp(workload, "lifecycle") == 0 && argc == 4)
		lifecycle(count(argv[3], "N", 1));
	else {
		fprintf(stderr, "small: unknown workload or wrong argument count: %s\n", workload);
		return 1;
	}
	return 0;
}
