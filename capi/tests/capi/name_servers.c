/*
 * VDESTACK_DNS gives the stacks vde_addstack makes their name servers: with
 * stack b the default stack, getaddrinfo asks b's server (stack a, 10.0.0.1,
 * answering one A query for "server.test" with 10.0.0.7) through b. A stack
 * made without the variable has no name server, so the same name is not found
 * there, and the host's resolver is never asked; an address that is none is
 * refused with EINVAL.
 *
 * Exits 0 on success; otherwise prints the failing call with errno, exits 1.
 */
#include <netdb.h>
#include <pthread.h>

#include "testlib.h"

static int server_fd;

/* Answers the first query with one A record 10.0.0.7 (for whatever name). */
static void *serve_one(void *arg)
{
	unsigned char q[512], reply[600];
	struct sockaddr_in peer;
	socklen_t len = sizeof peer;
	ssize_t n, end = 12;
	static const unsigned char answer[] = {
		0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 7,
	};

	(void)arg;
	n = recvfrom(server_fd, q, sizeof q, 0, (struct sockaddr *)&peer, &len);
	if (n < 17)
		return NULL;
	while (end < n && q[end] != 0)
		end += 1 + q[end];
	end += 5; /* the root label, type and class */
	memcpy(reply, q, (size_t)end);
	reply[2] = 0x81; /* a response, recursion desired and available */
	reply[3] = 0x80;
	reply[7] = 1; /* one answer */
	memcpy(reply + end, answer, sizeof answer);
	sendto(server_fd, reply, (size_t)end + sizeof answer, 0, (struct sockaddr *)&peer, len);
	return NULL;
}

int main(int argc, char *argv[])
{
	struct vdestack *a, *b, *c;
	struct addrinfo hints, *res;
	struct sockaddr_in addr = inet("10.0.0.1", 53);
	pthread_t server;
	char text[INET_ADDRSTRLEN];
	int code;

	hang_guard("name_servers", 30);
	need_vdenet(argc, argv);
	step = "stacks";
	CHECK(setenv("VDESTACK_DNS", "10.0.0.1", 1) == 0, "setenv");
	two_stacks(argv[1], &a, &b);
	server_fd = vde_msocket(a, AF_INET, SOCK_DGRAM, 0);
	CHECK(server_fd >= 0, "vde_msocket a");
	CHECK(bind(server_fd, (struct sockaddr *)&addr, sizeof addr) == 0, "bind 10.0.0.1:53");
	CHECK(pthread_create(&server, NULL, serve_one, NULL) == 0, "pthread_create");

	step = "getaddrinfo through b";
	vde_default_stack(b);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	code = getaddrinfo("server.test", "80", &hints, &res);
	if (code != 0)
		fprintf(stderr, "getaddrinfo: %s\n", gai_strerror(code));
	CHECK(code == 0, "getaddrinfo(server.test)");
	inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, text, sizeof text);
	CHECK(strcmp(text, "10.0.0.7") == 0, "the server's answer, 10.0.0.7");
	freeaddrinfo(res);
	pthread_join(server, NULL);

	step = "a stack without name servers";
	CHECK(unsetenv("VDESTACK_DNS") == 0, "unsetenv");
	c = vde_addstack(argv[1], NULL);
	CHECK(c != NULL, "vde_addstack c");
	vde_default_stack(c);
	CHECK(getaddrinfo("server.test", "80", &hints, &res) == EAI_NONAME,
	      "getaddrinfo on a stack with no name server: EAI_NONAME");

	step = "a bad address";
	CHECK(setenv("VDESTACK_DNS", "10.0.0.1,nonsense", 1) == 0, "setenv");
	errno = 0;
	CHECK(vde_addstack(argv[1], NULL) == NULL && errno == EINVAL,
	      "vde_addstack with a bad VDESTACK_DNS: EINVAL");

	vde_default_stack(NULL);
	vde_delstack(c);
	vde_delstack(b);
	vde_delstack(a);
	return 0;
}
