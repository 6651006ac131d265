/*
 * The variadic functions libvdestack.so.0 interposes, with their C prototypes:
 * Rust can call a variadic function but not define one. Each reads its variadic
 * argument and calls the library's Rust side, which answers a stack socket and
 * passes anything else on to libc's definition.
 */
#include <stdarg.h>

/* capi/src/interpose.rs */
int vdestack_capi_ioctl(int fd, unsigned long request, void *arg);

/* The request's argument, when it has one, is a pointer or an int: read as a
 * pointer, as glibc's own ioctl does, it reaches the kernel unchanged. */
int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	return vdestack_capi_ioctl(fd, request, arg);
}
