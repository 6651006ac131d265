//! The C library of vdestack: a drop-in `libvdestack.so.0`, made of the `vdestack`
//! crate's public API (the crate is built as `libvdestack_capi.so`, whose soname is
//! `libvdestack.so.0`; `make install` installs it under that name).
//!
//! C programs written against the reference `vdestack.h` run on vdestack unchanged.
//! This library exports the reference's five functions and makes the descriptors
//! `vde_msocket` returns behave as sockets of the stack in every BSD socket call.
//!
//! Reading, writing, polling, `fcntl`, `dup` and `close` already work on those
//! descriptors: they are AF_UNIX socket pairs whose other end the stack serves.
//! What an AF_UNIX socket cannot do by itself (`connect` to an IP address, `bind`,
//! `listen`, `accept`, `shutdown` of a socket that is not connected, the TCP/IP
//! answers of `getsockname`, `getsockopt`, ..., and the refusals of `send` and
//! `recv` before a connection exists) the library does, by exporting those
//! functions itself: for a descriptor of a stack `vdestack::bsd` answers, for any
//! other it calls the next definition (libc's), found with `dlsym(RTLD_NEXT, ...)`
//! when the library is loaded (or in libc itself, when the library comes after
//! it). The reference library interposes `socket()` the same way. What this
//! library adds to `bsd` is only the conversion of C types: socket addresses,
//! option bytes, errno, and the `SIGPIPE` a refused stream `send` raises.
//!
//! Under `vdestack run` (the `vdestack` binary of this crate) the library is
//! preloaded into a program with no stack of its own: `socket()` then makes its
//! sockets on the stack the `vdestack` process hosts, and the calls on them are
//! answered there (`remote.rs`; `stack_fd.rs` sends each call to the stack that
//! holds the socket).
//!
//! `ioctl` is variadic in C, and Rust cannot define a variadic function: `shim.c`
//! defines it with its C prototype and calls `vdestack_capi_ioctl` (`interpose.rs`).
//!
//! fork: the locks an interposed call may take before it knows whether the
//! descriptor is a stack's (the registry's, in `bsd`; the default stack's, here) are
//! taken around `fork()` by `pthread_atfork` handlers, so that a child never finds
//! one held by a thread that is not in it.
//!
//! No panic crosses the boundary: every exported function catches it and fails with
//! `EIO`.

mod addr;
mod channel;
mod descriptors;
mod interfaces;
mod interpose;
mod names;
mod next;
mod options;
pub mod protocol;
mod remote;
mod stack_fd;
mod unconnected;

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};
use vdestack::Stack;

/// What a `struct vdestack *` points to.
pub struct VdeStack {
    stack: Stack,
}

/// The stack that `socket()` uses, set by `vde_default_stack`, with the address of
/// its `VdeStack` (by which `vde_delstack` recognises it).
type DefaultStack = Option<(usize, Stack)>;

static DEFAULT_STACK: Mutex<DefaultStack> = Mutex::new(None);

fn lock_default_stack() -> MutexGuard<'static, DefaultStack> {
    DEFAULT_STACK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The default stack, if one is set.
fn default_stack() -> Option<Stack> {
    lock_default_stack()
        .as_ref()
        .map(|(_, stack)| stack.clone())
}

/// The locks held by the forking thread across `fork()`.
type HeldAcrossFork = (
    MutexGuard<'static, DefaultStack>,
    MutexGuard<'static, Vec<descriptors::Kept>>,
    MutexGuard<'static, remote::KnownTable>,
);

thread_local! {
    /// The default stack's guard and the kept descriptors', held by the forking
    /// thread across `fork()`.
    static HELD_ACROSS_FORK: RefCell<Option<HeldAcrossFork>> = const { RefCell::new(None) };
}

extern "C" fn before_fork() {
    // Always in this order (vde_addstack and vde_delstack never hold two).
    let held = (
        lock_default_stack(),
        descriptors::lock(),
        remote::lock_known(),
    );
    HELD_ACROSS_FORK.with(|slot| *slot.borrow_mut() = Some(held));
}

extern "C" fn after_fork() {
    HELD_ACROSS_FORK.with(|held| drop(held.borrow_mut().take()));
}

/// Runs when the library is loaded, before the program can call it or fork: finds
/// libc's definitions of the interposed functions, learns whether `vdestack run`
/// hosts the program's stack, and registers the fork handlers of the library's
/// locks.
extern "C" fn on_load() {
    next::resolve();
    remote::init();
    // SAFETY: the handlers are functions of this library, which is never unloaded
    // while the program runs (glibc forgets a library's handlers at dlclose).
    unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork)) };
}

/// The library's constructor (the dynamic loader runs `.init_array` at load).
#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;

fn set_errno(code: c_int) {
    // SAFETY: `__errno_location` returns the calling thread's errno, valid for writes
    // for the life of the thread.
    unsafe { *libc::__errno_location() = code };
}

/// Runs `f`, turning a panic into `on_panic` with errno EIO.
fn guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        set_errno(libc::EIO);
        on_panic
    })
}

/// `-1` with errno from an io::Error (EIO when it carries none). A stack whose
/// thread failed says so once on stderr, since C has only the errno to tell.
fn fail(e: std::io::Error) -> c_int {
    report_failure_once(&e);
    set_errno(vdestack::bsd::errno(&e));
    -1
}

/// Prints a stack failure (its thread's panic: an error of kind `NetworkDown` that
/// is no OS error) on stderr, the first time only, since C has only the errno to
/// tell; other errors pass silently.
pub(crate) fn report_failure_once(e: &std::io::Error) {
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let failure = e.kind() == std::io::ErrorKind::NetworkDown && e.raw_os_error().is_none();
    if failure && !REPORTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!("{e}");
    }
}

/// The environment variable choosing the backend of `vde_addstack`'s stacks:
/// `kernel` or `userspace` (the default when unset or empty).
pub const BACKEND_VARIABLE: &str = "VDESTACK_BACKEND";

/// The backend [`BACKEND_VARIABLE`] asks for; `EINVAL` for an unknown value.
fn backend_from_env() -> Result<vdestack::Backend, std::io::Error> {
    match std::env::var_os(BACKEND_VARIABLE) {
        None => Ok(vdestack::Backend::Userspace),
        Some(value) => match value.to_str() {
            Some("" | "userspace") => Ok(vdestack::Backend::Userspace),
            Some("kernel") => Ok(vdestack::Backend::Kernel),
            _ => {
                eprintln!(
                    "vdestack: {BACKEND_VARIABLE}={} is neither \"kernel\" nor \"userspace\"",
                    value.to_string_lossy()
                );
                Err(std::io::Error::from_raw_os_error(libc::EINVAL))
            }
        },
    }
}

/// The environment variable naming the name servers of `vde_addstack`'s stacks:
/// IPv4 or IPv6 addresses separated by commas or spaces, as `vdestack run`'s
/// `--dns`. A stack has none by default: its lookups never go to the host's.
pub const DNS_VARIABLE: &str = "VDESTACK_DNS";

/// The environment variable that adds the host's `/etc/resolv.conf` servers to
/// `vde_addstack`'s stacks when set and not empty, as `vdestack run`'s
/// `--host-dns` (the reference's namespaces read the host's file).
pub const HOST_DNS_VARIABLE: &str = "VDESTACK_HOST_DNS";

/// The name servers [`DNS_VARIABLE`] and [`HOST_DNS_VARIABLE`] ask for; `EINVAL`
/// for a word that is no address.
fn name_servers_from_env() -> Result<Vec<std::net::IpAddr>, std::io::Error> {
    let mut servers = Vec::new();
    if let Some(value) = std::env::var_os(DNS_VARIABLE) {
        let value = value.to_string_lossy();
        for word in value.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
            match word.parse() {
                Ok(addr) => servers.push(addr),
                Err(_) => {
                    eprintln!("vdestack: {DNS_VARIABLE}: {word:?} is not an IPv4 or IPv6 address");
                    return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
                }
            }
        }
    }
    if std::env::var_os(HOST_DNS_VARIABLE).is_some_and(|v| !v.is_empty()) {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        servers.extend(vdestack::dns::ResolvConf::parse(&text).name_servers);
    }
    Ok(servers)
}

/// A C string argument as UTF-8 (`None` for NULL); EINVAL when it is not UTF-8.
///
/// # Safety
/// `s` is NULL or points to a NUL-terminated string that outlives the call.
unsafe fn c_str<'a>(s: *const c_char) -> Result<Option<&'a str>, std::io::Error> {
    if s.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller promises a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(s) };
    s.to_str()
        .map(Some)
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
}

/// Creates a stack on the VDE network `vdenet` with interface `ifname` (NULL:
/// `vde0`). NULL or `""` gives a loopback-only stack. Returns NULL with errno set
/// on failure (e.g. ENOENT for a switch that is not there).
///
/// The environment variable `VDESTACK_BACKEND` ([`BACKEND_VARIABLE`]) picks the
/// backend, read at each call: unset, empty or `userspace` for the userspace stack,
/// `kernel` for a Linux namespace as the reference makes (vdestack built with the
/// feature `kernel-ns`; where it cannot be made, the cause is printed on stderr).
/// `VDESTACK_DNS` ([`DNS_VARIABLE`]) and `VDESTACK_HOST_DNS`
/// ([`HOST_DNS_VARIABLE`]), read at each call too, give the stack its name
/// servers, which `getaddrinfo` and the other resolver calls then ask through
/// the stack when it is the default one.
///
/// # Safety
/// `vdenet` and `ifname` are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn vde_addstack(vdenet: *mut c_char, ifname: *mut c_char) -> *mut VdeStack {
    guard(std::ptr::null_mut(), || {
        // SAFETY: forwarded from our caller's contract.
        let (vnl, ifname) = match unsafe { (c_str(vdenet), c_str(ifname)) } {
            (Ok(vnl), Ok(ifname)) => (vnl.unwrap_or(""), ifname),
            (Err(e), _) | (_, Err(e)) => {
                fail(e);
                return std::ptr::null_mut();
            }
        };
        let (backend, servers) = match (backend_from_env(), name_servers_from_env()) {
            (Ok(backend), Ok(servers)) => (backend, servers),
            (Err(e), _) | (_, Err(e)) => {
                fail(e);
                return std::ptr::null_mut();
            }
        };
        let mut builder = Stack::builder()
            .vnl(vnl)
            .backend(backend)
            .name_servers(servers);
        if let Some(ifname) = ifname {
            builder = builder.ifname(ifname);
        }
        // What the stack opens is kept open through closefrom/close_range: those
        // it names itself, or else those open after it that were not before.
        let before = (!builder.descriptors_known()).then(descriptors::open_descriptors);
        match builder.build() {
            Ok(stack) => {
                let made = Box::into_raw(Box::new(VdeStack { stack }));
                let opened = before.map(|before| descriptors::opened_since(&before));
                // SAFETY: `made` was just made from a box, and is not shared yet.
                let handle = unsafe { &*made }.stack.clone();
                descriptors::keep(made as usize, handle, opened.unwrap_or_default());
                made
            }
            Err(e) => {
                if backend == vdestack::Backend::Kernel {
                    eprintln!("{e}");
                }
                fail(e);
                std::ptr::null_mut()
            }
        }
    })
}

/// Destroys a stack (NULL: nothing). Its thread stops at once; descriptors the
/// program still holds then fail cleanly (EOF, EPIPE).
///
/// # Safety
/// `stack` is NULL or a pointer returned by `vde_addstack` and not yet deleted.
#[no_mangle]
pub unsafe extern "C" fn vde_delstack(stack: *mut VdeStack) {
    guard((), || {
        if stack.is_null() {
            return;
        }
        let mut default = lock_default_stack();
        let taken = default
            .take_if(|(address, _)| *address == stack as usize)
            .map(|(_, stack)| stack);
        drop(default);
        drop(taken);
        descriptors::forget(stack as usize);
        // SAFETY: the caller hands back ownership of a pointer from vde_addstack.
        drop(unsafe { Box::from_raw(stack) });
    })
}

/// Makes `socket()` create its AF_INET/AF_INET6 sockets on `stack` (NULL: on the
/// kernel again).
///
/// # Safety
/// `stack` is NULL or a live pointer returned by `vde_addstack`.
#[no_mangle]
pub unsafe extern "C" fn vde_default_stack(stack: *mut VdeStack) {
    guard((), || {
        // SAFETY: the caller promises a live stack or NULL.
        let new = unsafe { stack.as_ref() }.map(|s| (stack as usize, s.stack.clone()));
        let old = std::mem::replace(&mut *lock_default_stack(), new);
        // Dropped without the lock (a stack's drop may wait for its thread).
        drop(old);
    })
}

/// Runs `;`-separated `ip` commands on the stack; returns 0 or the exit status of
/// the first command that failed (what it would print goes to stderr), or -1 with
/// errno EINVAL for NULL arguments.
///
/// # Safety
/// `stack` is NULL or a live pointer from `vde_addstack`; `stackcmd` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn vde_stackcmd(stack: *mut VdeStack, stackcmd: *mut c_char) -> c_int {
    guard(-1, || {
        // SAFETY: the caller promises a live stack or NULL.
        let Some(stack) = (unsafe { stack.as_ref() }) else {
            set_errno(libc::EINVAL);
            return -1;
        };
        // SAFETY: forwarded from our caller's contract.
        let cmds = match unsafe { c_str(stackcmd) } {
            Ok(Some(cmds)) => cmds,
            Ok(None) => {
                set_errno(libc::EINVAL);
                return -1;
            }
            Err(e) => return fail(e),
        };
        match stack.stack.cmd(cmds) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{e}");
                e.status()
            }
        }
    })
}

/// `socket(2)` on the stack.
///
/// # Safety
/// `stack` is NULL or a live pointer from `vde_addstack`.
#[no_mangle]
pub unsafe extern "C" fn vde_msocket(
    stack: *mut VdeStack,
    domain: c_int,
    ty: c_int,
    protocol: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: the caller promises a live stack or NULL.
        let Some(stack) = (unsafe { stack.as_ref() }) else {
            set_errno(libc::EINVAL);
            return -1;
        };
        vdestack::bsd::socket(&stack.stack, domain, ty, protocol).map_or_else(fail, |fd| {
            unconnected::made(std::os::fd::IntoRawFd::into_raw_fd(fd), ty)
        })
    })
}

/// Runs one command, given as a NULL-terminated argv vector, on the stack; returns
/// its exit status, or -1 with errno EINVAL for NULL arguments. The reference library
/// exports it (its header does not declare it), so programs may link against it.
///
/// # Safety
/// `argv` is NULL or a NULL-terminated array of NUL-terminated strings; `stack` is
/// NULL or a live pointer from `vde_addstack`.
#[no_mangle]
pub unsafe extern "C" fn vde_stack_onecmd(argv: *mut *mut c_char, stack: *mut VdeStack) -> c_int {
    guard(-1, || {
        // SAFETY: the caller promises a live stack or NULL.
        let Some(stack) = (unsafe { stack.as_ref() }) else {
            set_errno(libc::EINVAL);
            return -1;
        };
        if argv.is_null() {
            set_errno(libc::EINVAL);
            return -1;
        }
        // One stackcmd command with every argument single-quoted, so that the
        // lexer gives back exactly these words.
        let mut command = String::new();
        for i in 0.. {
            // SAFETY: the array is NULL-terminated; we stop at the NULL.
            let arg = unsafe { *argv.add(i) };
            // SAFETY: each element is a NUL-terminated string.
            match unsafe { c_str(arg) } {
                Ok(Some(word)) => {
                    command.push('\'');
                    command.push_str(&word.replace('\'', "'\\''"));
                    command.push_str("' ");
                }
                Ok(None) => break,
                Err(e) => return fail(e),
            }
        }
        match stack.stack.cmd(&command) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{e}");
                e.status()
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    #[test]
    fn onecmd_runs_one_argv_command() {
        // SAFETY: NULL arguments ask for a loopback-only stack.
        let stack = unsafe { vde_addstack(std::ptr::null_mut(), std::ptr::null_mut()) };
        assert!(!stack.is_null());
        let run = |words: &[&str]| {
            let owned: Vec<CString> = words.iter().map(|w| CString::new(*w).unwrap()).collect();
            let mut argv: Vec<*mut c_char> =
                owned.iter().map(|w| w.as_ptr() as *mut c_char).collect();
            argv.push(std::ptr::null_mut());
            // SAFETY: a NULL-terminated argv of live strings, a live stack.
            unsafe { vde_stack_onecmd(argv.as_mut_ptr(), stack) }
        };
        assert_eq!(run(&["/bin/ip", "link", "set", "lo", "up"]), 0);
        assert_eq!(
            run(&["/bin/ip", "addr", "add", "10.0.0.x/24", "dev", "lo"]),
            1
        );
        // A word with a quote and a semicolon stays one word.
        assert_eq!(run(&["/bin/ip", "link", "set", "it's;odd", "up"]), 1);
        assert_eq!(run(&["ip", "link"]), 2);
        // SAFETY: NULL argv is refused, not dereferenced.
        assert_eq!(unsafe { vde_stack_onecmd(std::ptr::null_mut(), stack) }, -1);
        // SAFETY: the stack came from vde_addstack and is deleted once.
        unsafe { vde_delstack(stack) };
    }
}
