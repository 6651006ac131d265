//! Names resolved by the program's stack: `getaddrinfo` asks the default stack,
//! or under `vdestack run` the host's (`Request::Lookup`), whose name servers and
//! sockets are the stack's (`vdestack::Stack::lookup_host`), instead of glibc's
//! resolver, whose queries leave by the host's network (its internal sockets are
//! not interposed).
//!
//! Only the name is resolved here: libc's own `getaddrinfo` is then asked for
//! each address, numeric (`AI_NUMERICHOST`), so that the service, the socket
//! types and the structures are exactly libc's, and libc's `freeaddrinfo` frees
//! them (glibc frees a list node by node, so lists joined end to end are one
//! list to it). Numeric hosts, a null host and `AI_NUMERICHOST` go to libc
//! unchanged, as does everything when the program's sockets are the host's.

use super::protocol::{Reply, Request};
use super::{guard, next, remote, set_errno};
use std::ffi::{c_char, c_int, CStr, CString};
use std::io;
use std::net::IpAddr;

/// The `getaddrinfo` code of a lookup's failure.
fn gai_code(e: &io::Error) -> c_int {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::InvalidInput => libc::EAI_NONAME,
        io::ErrorKind::TimedOut => libc::EAI_AGAIN,
        _ => libc::EAI_FAIL,
    }
}

/// `name`'s addresses from the program's stack; `None` when its sockets are the
/// host's (no default stack, not under `vdestack run`).
fn stack_lookup(name: &str) -> Option<Result<Vec<IpAddr>, c_int>> {
    if let Some(stack) = super::default_stack() {
        return Some(stack.lookup_host(name).map_err(|e| gai_code(&e)));
    }
    if remote::is_remote() {
        return Some(
            match remote::call(None, &Request::Lookup(name.to_owned())) {
                Ok((Reply::Addrs(found), _)) => found,
                Ok(_) => Err(libc::EAI_FAIL),
                Err(e) => {
                    set_errno(vdestack::bsd::errno(&e));
                    Err(libc::EAI_SYSTEM)
                }
            },
        );
    }
    None
}

/// libc's `getaddrinfo` with the program's arguments.
///
/// # Safety
/// As `getaddrinfo(3)`.
unsafe fn next_getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    match next::getaddrinfo() {
        // SAFETY: forwarding the caller's arguments, valid as getaddrinfo(3) says.
        Some(f) => unsafe { f(node, service, hints, res) },
        None => {
            set_errno(libc::ENOSYS);
            libc::EAI_SYSTEM
        }
    }
}

/// `getaddrinfo(3)`, its host name resolved by the program's stack.
///
/// # Safety
/// As `getaddrinfo(3)`: `node` and `service` null or NUL-terminated strings,
/// `hints` null or a valid `addrinfo`, `res` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    guard(libc::EAI_FAIL, || {
        // SAFETY: the caller's arguments, as getaddrinfo(3) takes them.
        let forward = || unsafe { next_getaddrinfo(node, service, hints, res) };
        if node.is_null() || res.is_null() {
            return forward();
        }
        // SAFETY: a non-null `hints` is a valid addrinfo (the caller's contract).
        let given = (!hints.is_null()).then(|| unsafe { *hints });
        if given.is_some_and(|h| h.ai_flags & libc::AI_NUMERICHOST != 0) {
            return forward();
        }
        // SAFETY: `node` is a NUL-terminated string (checked non-null).
        let Ok(name) = unsafe { CStr::from_ptr(node) }.to_str() else {
            return forward();
        };
        if name.parse::<IpAddr>().is_ok() || name.contains('%') || name.is_empty() {
            return forward();
        }
        let Some(found) = stack_lookup(name) else {
            return forward();
        };
        let addrs = match found {
            Ok(addrs) => addrs,
            Err(code) => return code,
        };
        let family = given.map_or(libc::AF_UNSPEC, |h| h.ai_family);
        let addrs: Vec<IpAddr> = addrs
            .into_iter()
            .filter(|a| match family {
                libc::AF_INET => a.is_ipv4(),
                libc::AF_INET6 => a.is_ipv6(),
                _ => true,
            })
            .collect();
        if addrs.is_empty() {
            return libc::EAI_NONAME;
        }
        // SAFETY: addrinfo is plain data; all zeros is "no hints" (AF_UNSPEC).
        let mut numeric: libc::addrinfo = given.unwrap_or(unsafe { std::mem::zeroed() });
        // The address is the stack's: the host's interfaces (AI_ADDRCONFIG) do not
        // decide which families it may have.
        numeric.ai_flags =
            (numeric.ai_flags | libc::AI_NUMERICHOST) & !(libc::AI_ADDRCONFIG | libc::AI_CANONNAME);
        let mut head: *mut libc::addrinfo = std::ptr::null_mut();
        let mut tail: *mut libc::addrinfo = std::ptr::null_mut();
        for addr in addrs {
            let text = CString::new(addr.to_string()).unwrap_or_default();
            let mut part: *mut libc::addrinfo = std::ptr::null_mut();
            // SAFETY: a NUL-terminated address, the caller's service, our hints.
            let code = unsafe { next_getaddrinfo(text.as_ptr(), service, &numeric, &mut part) };
            if code != 0 {
                free_list(head);
                return code;
            }
            if head.is_null() {
                head = part;
            } else {
                // SAFETY: `tail` is the last node of the list libc gave us.
                unsafe { (*tail).ai_next = part };
            }
            tail = part;
            // SAFETY: walking the list libc just gave, to its last node.
            while !tail.is_null() && unsafe { !(*tail).ai_next.is_null() } {
                tail = unsafe { (*tail).ai_next };
            }
        }
        if given.is_some_and(|h| h.ai_flags & libc::AI_CANONNAME != 0) && !head.is_null() {
            // SAFETY: `head` is libc's node; its canonical name is malloc'd (or
            // null) and freed by libc's freeaddrinfo, as strdup's copy will be.
            unsafe {
                libc::free((*head).ai_canonname.cast());
                (*head).ai_canonname = libc::strdup(node);
            }
        }
        // SAFETY: `res` is valid for a write (checked non-null).
        unsafe { *res = head };
        0
    })
}

/// Frees a list libc's `getaddrinfo` made.
fn free_list(list: *mut libc::addrinfo) {
    if list.is_null() {
        return;
    }
    if let Some(free) = next::freeaddrinfo() {
        // SAFETY: a list of libc's own, freed once.
        unsafe { free(list) };
    }
}
