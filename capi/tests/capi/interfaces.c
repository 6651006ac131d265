/*
 * With a default stack set, the calls that describe interfaces describe the
 * stack's: if_nametoindex, if_indextoname, if_nameindex, getifaddrs and the
 * SIOCGIF* ioctls on a stack socket. The stack (on the VDE network given as
 * argv[1]) names its interface "stk7", which the host does not have, with
 * 10.0.0.1/24; its lo is up with 127.0.0.1/8.
 *
 * Exits 0 on success; otherwise prints the failing call with errno, exits 1.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <vdestack.h>

#include "testlib.h"

static const char *ip4(const struct sockaddr *sa)
{
	static char text[INET_ADDRSTRLEN];
	return inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			 text, sizeof(text));
}

int main(int argc, char *argv[])
{
	struct vdestack *stack;
	struct if_nameindex *names, *n;
	struct ifaddrs *list, *ifa;
	struct ifreq ifr, reqs[8];
	struct ifconf conf;
	char name[IF_NAMESIZE];
	int fd, found_addr = 0, found_packet = 0, count = 0;

	hang_guard("interfaces", 20);
	CHECK(argc == 2, "usage: interfaces VNL");
	stack = vde_addstack(argv[1], "stk7");
	CHECK(stack != NULL, "vde_addstack");
	CHECK(vde_stackcmd(stack, "/bin/ip link set lo up; /bin/ip link set stk7 up; "
				  "/bin/ip addr add 10.0.0.1/24 dev stk7") == 0,
	      "vde_stackcmd");
	vde_default_stack(stack);

	step = "if_nametoindex";
	CHECK(if_nametoindex("stk7") == 2, "if_nametoindex(stk7) is 2");
	CHECK(if_nametoindex("lo") == 1, "if_nametoindex(lo) is 1");
	errno = 0;
	CHECK(if_nametoindex("nosuch0") == 0 && errno == ENODEV, "an unknown name: ENODEV");
	CHECK(if_indextoname(2, name) != NULL && strcmp(name, "stk7") == 0, "if_indextoname(2)");
	CHECK(if_indextoname(9, name) == NULL && errno == ENXIO, "an unknown index: ENXIO");

	step = "if_nameindex";
	names = if_nameindex();
	CHECK(names != NULL, "if_nameindex");
	for (n = names; n->if_index != 0; n++)
		count++;
	CHECK(count == 2 && strcmp(names[1].if_name, "stk7") == 0, "lo and stk7");
	if_freenameindex(names);

	step = "getifaddrs";
	CHECK(getifaddrs(&list) == 0, "getifaddrs");
	for (ifa = list; ifa != NULL; ifa = ifa->ifa_next) {
		if (strcmp(ifa->ifa_name, "stk7") != 0 || ifa->ifa_addr == NULL)
			continue;
		CHECK(ifa->ifa_flags & IFF_UP, "stk7 is up");
		if (ifa->ifa_addr->sa_family == AF_PACKET)
			found_packet = 1;
		if (ifa->ifa_addr->sa_family == AF_INET) {
			CHECK(strcmp(ip4(ifa->ifa_addr), "10.0.0.1") == 0, "stk7's address");
			CHECK(strcmp(ip4(ifa->ifa_netmask), "255.255.255.0") == 0, "its netmask");
			CHECK(strcmp(ip4(ifa->ifa_broadaddr), "10.0.0.255") == 0, "its broadcast");
			found_addr = 1;
		}
	}
	CHECK(found_addr && found_packet, "stk7's AF_PACKET and AF_INET entries");
	freeifaddrs(list);

	step = "SIOCGIF*";
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK(fd >= 0, "socket");
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "stk7");
	CHECK(ioctl(fd, SIOCGIFADDR, &ifr) == 0, "SIOCGIFADDR");
	CHECK(strcmp(ip4(&ifr.ifr_addr), "10.0.0.1") == 0, "SIOCGIFADDR's address");
	CHECK(ioctl(fd, SIOCGIFNETMASK, &ifr) == 0, "SIOCGIFNETMASK");
	CHECK(strcmp(ip4(&ifr.ifr_netmask), "255.255.255.0") == 0, "the netmask");
	CHECK(ioctl(fd, SIOCGIFBRDADDR, &ifr) == 0, "SIOCGIFBRDADDR");
	CHECK(strcmp(ip4(&ifr.ifr_broadaddr), "10.0.0.255") == 0, "the broadcast");
	CHECK(ioctl(fd, SIOCGIFINDEX, &ifr) == 0 && ifr.ifr_ifindex == 2, "SIOCGIFINDEX");
	CHECK(ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP) &&
		      (ifr.ifr_flags & IFF_BROADCAST) && !(ifr.ifr_flags & IFF_LOOPBACK),
	      "SIOCGIFFLAGS");
	CHECK(ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu == 1500, "SIOCGIFMTU");
	CHECK(ioctl(fd, SIOCGIFHWADDR, &ifr) == 0 && ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER,
	      "SIOCGIFHWADDR");
	ifr.ifr_ifindex = 1;
	CHECK(ioctl(fd, SIOCGIFNAME, &ifr) == 0 && strcmp(ifr.ifr_name, "lo") == 0, "SIOCGIFNAME");
	strcpy(ifr.ifr_name, "nosuch0");
	FAILS_WITH(ioctl(fd, SIOCGIFADDR, &ifr), ENODEV, "SIOCGIFADDR of an unknown name");
	conf.ifc_len = sizeof(reqs);
	conf.ifc_req = reqs;
	CHECK(ioctl(fd, SIOCGIFCONF, &conf) == 0 && conf.ifc_len == 2 * (int)sizeof(struct ifreq),
	      "SIOCGIFCONF: lo's and stk7's IPv4 addresses");
	CHECK(strcmp(reqs[1].ifr_name, "stk7") == 0 && strcmp(ip4(&reqs[1].ifr_addr), "10.0.0.1") == 0,
	      "SIOCGIFCONF's second entry");
	close(fd);
	vde_default_stack(NULL);
	vde_delstack(stack);
	return 0;
}
