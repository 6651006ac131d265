//! The next definitions (libc's) of the functions the library interposes, found with
//! `dlsym(RTLD_NEXT, ...)` once, when the library is loaded (see [`resolve`]), never
//! inside an interposed call: a forked child (the kernel backend's helper, a
//! program's) then never runs the dynamic linker's lookup, whose locks another thread
//! may have held at the fork.
//!
//! `RTLD_NEXT` looks in the objects loaded after this library. When the library
//! comes after libc in the lookup order (loaded with `dlopen`, as Python's ctypes
//! does, or preloaded behind libc) it finds nothing: the function is then looked
//! up in libc itself, so that a call that reaches this library through its own
//! symbols (a `dlsym` on its handle) still goes on to libc's.

use std::ffi::{c_int, c_ulong, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The soname of the C library whose functions this one passes calls on to.
const LIBC: &str = "libc.so.6\0";

/// The address of `symbol`'s next definition, or libc's own if nothing comes after
/// this library; 0 if neither has one.
fn lookup(symbol: &str, libc_handle: *mut c_void) -> usize {
    debug_assert!(symbol.ends_with('\0'));
    // SAFETY: `symbol` is NUL-terminated; RTLD_NEXT is a valid handle.
    let next = unsafe { libc::dlsym(libc::RTLD_NEXT, symbol.as_ptr().cast()) };
    if !next.is_null() || libc_handle.is_null() {
        return next as usize;
    }
    // SAFETY: `symbol` is NUL-terminated; the handle came from dlopen.
    unsafe { libc::dlsym(libc_handle, symbol.as_ptr().cast()) as usize }
}

/// libc's handle (it is always loaded: RTLD_NOLOAD only finds it); NULL if it has
/// another name here.
fn libc_handle() -> *mut c_void {
    // SAFETY: the name is NUL-terminated; RTLD_NOLOAD loads nothing. The handle is
    // never closed (libc stays loaded for the life of the process anyway).
    unsafe { libc::dlopen(LIBC.as_ptr().cast(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) }
}

macro_rules! next_fns {
    ($($name:ident: fn($($arg:ty),*) -> $ret:ty;)*) => {
        /// Where each next definition is (0: none), set by [`resolve`].
        #[allow(non_upper_case_globals)]
        mod address {
            use std::sync::atomic::AtomicUsize;
            $(pub(super) static $name: AtomicUsize = AtomicUsize::new(0);)*
        }

        /// Looks every next definition up (at load time).
        fn resolve_fixed(libc_handle: *mut c_void) {
            $(address::$name.store(
                lookup(concat!(stringify!($name), "\0"), libc_handle),
                Ordering::Relaxed,
            );)*
        }

        $(
            #[doc = concat!("libc's `", stringify!($name), "`, if there is one.")]
            pub(super) fn $name() -> Option<unsafe extern "C" fn($($arg),*) -> $ret> {
                let address = address::$name.load(Ordering::Relaxed);
                // SAFETY: the symbol is libc's function of this very prototype.
                (address != 0).then(|| unsafe {
                    std::mem::transmute::<usize, unsafe extern "C" fn($($arg),*) -> $ret>(address)
                })
            }
        )*
    };
}

next_fns! {
    socket: fn(c_int, c_int, c_int) -> c_int;
    connect: fn(c_int, *const libc::sockaddr, libc::socklen_t) -> c_int;
    bind: fn(c_int, *const libc::sockaddr, libc::socklen_t) -> c_int;
    listen: fn(c_int, c_int) -> c_int;
    accept4: fn(c_int, *mut libc::sockaddr, *mut libc::socklen_t, c_int) -> c_int;
    getsockname: fn(c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> c_int;
    getpeername: fn(c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> c_int;
    getsockopt: fn(c_int, c_int, c_int, *mut c_void, *mut libc::socklen_t) -> c_int;
    setsockopt: fn(c_int, c_int, c_int, *const c_void, libc::socklen_t) -> c_int;
    sendto: fn(c_int, *const c_void, usize, c_int, *const libc::sockaddr, libc::socklen_t) -> isize;
    sendmsg: fn(c_int, *const libc::msghdr, c_int) -> isize;
    send: fn(c_int, *const c_void, usize, c_int) -> isize;
    recv: fn(c_int, *mut c_void, usize, c_int) -> isize;
    recvfrom: fn(c_int, *mut c_void, usize, c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> isize;
    recvmsg: fn(c_int, *mut libc::msghdr, c_int) -> isize;
    read: fn(c_int, *mut c_void, usize) -> isize;
    readv: fn(c_int, *const libc::iovec, c_int) -> isize;
    write: fn(c_int, *const c_void, usize) -> isize;
    shutdown: fn(c_int, c_int) -> c_int;
    close_range: fn(std::ffi::c_uint, std::ffi::c_uint, c_int) -> c_int;
    closefrom: fn(c_int) -> ();
    if_nametoindex: fn(*const std::ffi::c_char) -> std::ffi::c_uint;
    if_indextoname: fn(std::ffi::c_uint, *mut std::ffi::c_char) -> *mut std::ffi::c_char;
    getaddrinfo: fn(*const std::ffi::c_char, *const std::ffi::c_char, *const libc::addrinfo, *mut *mut libc::addrinfo) -> c_int;
    freeaddrinfo: fn(*mut libc::addrinfo) -> ();
    if_nameindex: fn() -> *mut libc::if_nameindex;
    getifaddrs: fn(*mut *mut libc::ifaddrs) -> c_int;
    getnameinfo: fn(*const libc::sockaddr, libc::socklen_t, *mut std::ffi::c_char, libc::socklen_t, *mut std::ffi::c_char, libc::socklen_t, c_int) -> c_int;
    res_query: fn(*const std::ffi::c_char, c_int, c_int, *mut u8, c_int) -> c_int;
    res_search: fn(*const std::ffi::c_char, c_int, c_int, *mut u8, c_int) -> c_int;
    res_nquery: fn(*mut c_void, *const std::ffi::c_char, c_int, c_int, *mut u8, c_int) -> c_int;
    res_nsearch: fn(*mut c_void, *const std::ffi::c_char, c_int, c_int, *mut u8, c_int) -> c_int;
    gethostbyname2: fn(*const std::ffi::c_char, c_int) -> *mut libc::hostent;
    gethostbyname2_r: fn(*const std::ffi::c_char, c_int, *mut libc::hostent, *mut std::ffi::c_char, usize, *mut *mut libc::hostent, *mut c_int) -> c_int;
}

/// libc's `ioctl`, variadic as C declares it.
pub(super) type Ioctl = unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int;

static IOCTL: AtomicUsize = AtomicUsize::new(0);

/// libc's `ioctl`, if there is one.
pub(super) fn ioctl() -> Option<Ioctl> {
    let address = IOCTL.load(Ordering::Relaxed);
    // SAFETY: the symbol is libc's `ioctl`, of this very (variadic) prototype.
    (address != 0).then(|| unsafe { std::mem::transmute::<usize, Ioctl>(address) })
}

/// Looks every next definition up. Called once, by the library's constructor.
pub(super) fn resolve() {
    let libc_handle = libc_handle();
    resolve_fixed(libc_handle);
    IOCTL.store(lookup("ioctl\0", libc_handle), Ordering::Relaxed);
}
