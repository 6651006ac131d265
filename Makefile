# Builds and installs the C interface of vdestack (the crate in capi/): a drop-in
# libvdestack.so.0, its header and a pkg-config file.
#
#   make install PREFIX=/usr/local     build (cargo build --release -p vdestack-capi,
#                                      with the kernel backend) and install:
#                                        $(PREFIX)/bin/vdestack (`vdestack run`)
#                                        $(PREFIX)/lib/libvdestack.so.0.1.0
#                                        $(PREFIX)/lib/libvdestack.so.0 -> libvdestack.so.0.1.0
#                                        $(PREFIX)/lib/libvdestack.so   -> libvdestack.so.0
#                                        $(PREFIX)/include/vdestack.h
#                                        $(PREFIX)/lib/pkgconfig/vdestack.pc
#   make uninstall PREFIX=/usr/local   remove those files again
#
# Variables: DESTDIR (staging root, prepended to every installed path but not
# written into vdestack.pc), BINDIR, LIBDIR, INCLUDEDIR, PKGCONFIGDIR (defaults
# under PREFIX), CARGO (cargo binary), CARGO_TARGET_DIR (cargo's target directory),
# CARGO_BUILD=0 to skip the cargo build and install an already built LIB and BIN
# (defaults: $(CARGO_TARGET_DIR)/release/libvdestack_capi.so and
# $(CARGO_TARGET_DIR)/release/vdestack, what cargo builds). The build gives the
# command LIBDIR (VDESTACK_LIBDIR), where it finds the library to preload.

PREFIX = /usr/local
BINDIR = $(PREFIX)/bin
LIBDIR = $(PREFIX)/lib
INCLUDEDIR = $(PREFIX)/include
PKGCONFIGDIR = $(LIBDIR)/pkgconfig
DESTDIR =

CARGO ?= cargo
CARGO_TARGET_DIR ?= target
CARGO_BUILD = 1
LIB = $(CARGO_TARGET_DIR)/release/libvdestack_capi.so
BIN = $(CARGO_TARGET_DIR)/release/vdestack

VERSION = 0.1.0
SONAME = libvdestack.so.0
REALNAME = libvdestack.so.$(VERSION)

INSTALL = install

.PHONY: all build install uninstall

all: build

build:
	if [ "$(CARGO_BUILD)" != 0 ]; then \
		VDESTACK_LIBDIR="$(LIBDIR)" \
		$(CARGO) build --release -p vdestack-capi --target-dir "$(CARGO_TARGET_DIR)"; \
	fi

install: build
	test -f "$(LIB)"
	test -f "$(BIN)"
	$(INSTALL) -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(LIBDIR)" "$(DESTDIR)$(INCLUDEDIR)" \
		"$(DESTDIR)$(PKGCONFIGDIR)"
	$(INSTALL) -m 755 "$(BIN)" "$(DESTDIR)$(BINDIR)/vdestack"
	$(INSTALL) -m 755 "$(LIB)" "$(DESTDIR)$(LIBDIR)/$(REALNAME)"
	ln -sf "$(REALNAME)" "$(DESTDIR)$(LIBDIR)/$(SONAME)"
	ln -sf "$(SONAME)" "$(DESTDIR)$(LIBDIR)/libvdestack.so"
	$(INSTALL) -m 644 capi/include/vdestack.h "$(DESTDIR)$(INCLUDEDIR)/vdestack.h"
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' capi/vdestack.pc.in \
		> "$(DESTDIR)$(PKGCONFIGDIR)/vdestack.pc"
	chmod 644 "$(DESTDIR)$(PKGCONFIGDIR)/vdestack.pc"

uninstall:
	rm -f "$(DESTDIR)$(BINDIR)/vdestack" \
		"$(DESTDIR)$(LIBDIR)/$(REALNAME)" "$(DESTDIR)$(LIBDIR)/$(SONAME)" \
		"$(DESTDIR)$(LIBDIR)/libvdestack.so" "$(DESTDIR)$(INCLUDEDIR)/vdestack.h" \
		"$(DESTDIR)$(PKGCONFIGDIR)/vdestack.pc"
