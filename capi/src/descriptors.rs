//! The stacks' own descriptors, kept open through a program's `closefrom` and
//! `close_range`.
//!
//! A stack keeps descriptors of its own open for its whole life: its thread's
//! epoll and wake-up descriptors, its link's (the switch's sockets), a kernel
//! stack's helper. Programs that close every descriptor they did not open (ssh
//! calls `closefrom(3)` first thing) would close those under the stack, whose
//! thread would then poll, write to and finally close numbers the program reuses
//! for its own files. So the interposed `closefrom` and `close_range` close the
//! range asked for except the descriptors the stack's thread holds at that
//! moment (`Stack::descriptors`: its poll and eventfd, its link's, its ends of
//! the sockets' pairs) and, for a stack that may hold others it cannot name (a
//! libvdeplug plugin other than `vde`, a kernel stack's helper), those
//! `vde_addstack` saw it open: open after it and not before. A look at
//! `/proc/self/fd` costs some 8 us each, so it is made only for such stacks
//! (`StackBuilder::descriptors_known`).
//!
//! In a process forked after the stack was made, nothing is kept: the stack's
//! thread is not there, and the child closing its copies harms no one.
//!
//! What is not covered: a program closing the stack's descriptors one by one
//! with `close` (not interposed, so that it stays lock-free and signal-safe), and
//! one that makes the `close_range` system call itself.

use super::next;
use std::ffi::{c_int, c_uint};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use vdestack::Stack;

/// The descriptors a stack opened, by the address of its `VdeStack`, with the
/// process that made it.
pub(super) struct Kept {
    stack: usize,
    pid: u32,
    fds: Vec<c_int>,
    /// The stack, asked for the descriptors its thread holds when a range is
    /// closed (dropped by `vde_delstack` before the stack itself).
    handle: Stack,
}

static KEPT: Mutex<Vec<Kept>> = Mutex::new(Vec::new());

/// The process that last made a stack: any other has nothing to keep, and does
/// not take the lock (a forked child may have been forked while it was held).
static MAKER: AtomicU32 = AtomicU32::new(0);

pub(super) fn lock() -> MutexGuard<'static, Vec<Kept>> {
    KEPT.lock().unwrap_or_else(|e| e.into_inner())
}

fn pid() -> u32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u32 }
}

/// The descriptors open in this process, sorted (empty if `/proc` cannot be
/// read).
pub(super) fn open_descriptors() -> Vec<c_int> {
    let mut fds = Vec::new();
    // SAFETY: the path is NUL-terminated; the directory is closed below.
    let dir = unsafe { libc::opendir(c"/proc/self/fd".as_ptr()) };
    if dir.is_null() {
        return fds;
    }
    // SAFETY: `dir` is an open directory stream.
    let own = unsafe { libc::dirfd(dir) };
    loop {
        // SAFETY: as above; the entry is read before the next readdir.
        let entry = unsafe { libc::readdir(dir) };
        if entry.is_null() {
            break;
        }
        // SAFETY: readdir returned a valid entry with a NUL-terminated name.
        let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) };
        if let Some(fd) = name.to_str().ok().and_then(|n| n.parse::<c_int>().ok()) {
            if fd != own {
                fds.push(fd);
            }
        }
    }
    // SAFETY: closes the stream opened above, once.
    unsafe { libc::closedir(dir) };
    fds.sort_unstable();
    fds
}

/// The descriptors open now that were not in `before` (sorted).
pub(super) fn opened_since(before: &[c_int]) -> Vec<c_int> {
    let mut now = open_descriptors();
    now.retain(|fd| before.binary_search(fd).is_err());
    now
}

/// Notes a stack just made, and the descriptors it opened that it does not name
/// in `Stack::descriptors` (none when its builder said it names them all).
pub(super) fn keep(stack: usize, handle: Stack, fds: Vec<c_int>) {
    let pid = pid();
    lock().push(Kept {
        stack,
        pid,
        fds,
        handle,
    });
    MAKER.store(pid, Ordering::Relaxed);
}

/// Forgets the descriptors of a stack that is deleted.
pub(super) fn forget(stack: usize) {
    if MAKER.load(Ordering::Relaxed) == pid() {
        lock().retain(|kept| kept.stack != stack);
    }
}

/// The descriptors in `first..=last` that stacks of this process keep, sorted.
fn kept_in(first: c_uint, last: c_uint) -> Vec<c_uint> {
    let pid = pid();
    if MAKER.load(Ordering::Relaxed) != pid {
        return Vec::new();
    }
    let mut fds: Vec<c_uint> = Vec::new();
    for kept in lock().iter().filter(|kept| kept.pid == pid) {
        // A stack whose thread is gone holds nothing more.
        let now = kept.handle.descriptors().unwrap_or_default();
        let all = kept.fds.iter().chain(&now);
        fds.extend(all.filter_map(|&fd| c_uint::try_from(fd).ok()));
    }
    fds.retain(|fd| (first..=last).contains(fd));
    fds.sort_unstable();
    fds.dedup();
    fds
}

/// `close_range(2)` itself (the system call, as glibc's `closefrom` makes it);
/// where the kernel has none (before 5.9), the open descriptors of the range one
/// by one, as glibc falls back.
fn close_range_call(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    // SAFETY: close_range takes integers only.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    let enosys = ret != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS);
    if !enosys || flags != 0 {
        return ret as c_int;
    }
    for fd in open_descriptors() {
        if let Ok(n) = c_uint::try_from(fd) {
            if (first..=last).contains(&n) {
                // SAFETY: the program asked for this descriptor to be closed.
                unsafe { libc::close(fd) };
            }
        }
    }
    0
}

/// Closes (or with `CLOSE_RANGE_CLOEXEC` marks) `first..=last` except `kept`
/// (sorted).
fn close_around(first: c_uint, last: c_uint, flags: c_int, kept: &[c_uint]) -> c_int {
    let mut from = first;
    for &fd in kept {
        if fd > from && close_range_call(from, fd - 1, flags) != 0 {
            return -1;
        }
        match fd.checked_add(1) {
            Some(next) => from = next,
            None => return 0,
        }
    }
    if from <= last {
        return close_range_call(from, last, flags);
    }
    0
}

/// `close_range(2)`: the range asked for, except the descriptors the program's
/// stacks keep (see the module doc). Invalid arguments are libc's to refuse.
#[no_mangle]
pub extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    super::guard(-1, || {
        let known = libc::CLOSE_RANGE_CLOEXEC as c_int | libc::CLOSE_RANGE_UNSHARE as c_int;
        let kept = if first > last || flags & !known != 0 {
            Vec::new()
        } else {
            kept_in(first, last)
        };
        if kept.is_empty() {
            return match next::close_range() {
                // SAFETY: forwarding the program's own arguments.
                Some(f) => unsafe { f(first, last, flags) },
                None => close_range_call(first, last, flags),
            };
        }
        close_around(first, last, flags, &kept)
    })
}

/// `closefrom(3)`: every descriptor from `lowfd` on, except the descriptors the
/// program's stacks keep (see the module doc).
#[no_mangle]
pub extern "C" fn closefrom(lowfd: c_int) {
    super::guard((), || {
        // glibc takes a negative lowfd as 0.
        let first = c_uint::try_from(lowfd).unwrap_or(0);
        let kept = kept_in(first, c_uint::MAX);
        if kept.is_empty() {
            match next::closefrom() {
                // SAFETY: forwarding the program's own argument.
                Some(f) => unsafe { f(lowfd) },
                None => {
                    close_range_call(first, c_uint::MAX, 0);
                }
            }
            return;
        }
        // closefrom returns nothing (a descriptor that would not close stays).
        close_around(first, c_uint::MAX, 0, &kept);
    })
}
