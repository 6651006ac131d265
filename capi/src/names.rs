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

extern "C" {
    /// glibc's per-thread `h_errno`.
    fn __h_errno_location() -> *mut c_int;
}

fn set_h_errno(code: c_int) {
    // SAFETY: glibc's function gives this thread's h_errno.
    unsafe { *__h_errno_location() = code };
}

/// `h_errno` for a `getaddrinfo` code.
fn h_errno_of(code: c_int) -> c_int {
    match code {
        libc::EAI_AGAIN => 2, // TRY_AGAIN
        libc::EAI_FAIL => 3,  // NO_RECOVERY
        _ => 1,               // HOST_NOT_FOUND
    }
}

/// Fills `ret` with `name` and its `addrs` of `family`, all its strings and
/// arrays in `buf`, as `gethostbyname2_r(3)`: `ERANGE` when `buf` is too small.
///
/// # Safety
/// `ret` valid for a write, `buf` for writes of `len` bytes.
unsafe fn fill_hostent(
    name: &CStr,
    family: c_int,
    addrs: &[IpAddr],
    ret: *mut libc::hostent,
    buf: *mut c_char,
    len: usize,
) -> Result<(), c_int> {
    let length = if family == libc::AF_INET6 { 16 } else { 4 };
    let ptr = std::mem::size_of::<*mut c_char>();
    let name = name.to_bytes_with_nul();
    let addr_bytes: Vec<u8> = addrs
        .iter()
        .flat_map(|a| match a {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        })
        .collect();
    // Pointers first (aligned), then the addresses, then the name.
    let align = (ptr - (buf as usize % ptr)) % ptr;
    let pointers = (addrs.len() + 1 + 1) * ptr; // addresses and NULL, aliases' NULL
    let needed = align + pointers + addr_bytes.len() + name.len();
    if needed > len {
        return Err(libc::ERANGE);
    }
    // SAFETY: every write is inside `buf`'s `len` bytes (`needed` <= `len`),
    // pointers at aligned offsets.
    unsafe {
        let base = buf.add(align);
        let addr_list = base.cast::<*mut c_char>();
        let aliases = addr_list.add(addrs.len() + 1);
        let data = base.add(pointers);
        std::ptr::copy_nonoverlapping(addr_bytes.as_ptr().cast::<c_char>(), data, addr_bytes.len());
        for k in 0..addrs.len() {
            *addr_list.add(k) = data.add(k * length);
        }
        *addr_list.add(addrs.len()) = std::ptr::null_mut();
        *aliases = std::ptr::null_mut();
        let name_at = data.add(addr_bytes.len());
        std::ptr::copy_nonoverlapping(name.as_ptr().cast::<c_char>(), name_at, name.len());
        ret.write(libc::hostent {
            h_name: name_at,
            h_aliases: aliases,
            h_addrtype: family,
            h_length: length as c_int,
            h_addr_list: addr_list,
        });
    }
    Ok(())
}

/// `gethostbyname2_r(3)`, the name resolved by the program's stack.
///
/// # Safety
/// As `gethostbyname2_r(3)`.
#[no_mangle]
pub unsafe extern "C" fn gethostbyname2_r(
    name: *const c_char,
    family: c_int,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    len: usize,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
) -> c_int {
    guard(libc::EIO, || {
        if name.is_null() || ret.is_null() || result.is_null() {
            return libc::EINVAL;
        }
        // SAFETY: `result` is valid for a write (checked non-null).
        unsafe { *result = std::ptr::null_mut() };
        let fail = |h: c_int, errno: c_int| {
            if !h_errnop.is_null() {
                // SAFETY: the caller's h_errno slot.
                unsafe { *h_errnop = h };
            }
            errno
        };
        if family != libc::AF_INET && family != libc::AF_INET6 {
            return fail(4, libc::EAFNOSUPPORT); // NO_DATA
        }
        // SAFETY: `name` is NUL-terminated (checked non-null).
        let cname = unsafe { CStr::from_ptr(name) };
        let Ok(text) = cname.to_str() else {
            return fail(1, libc::ENOENT);
        };
        let found = match text.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![ip]),
            Err(_) => match stack_lookup(text) {
                Some(found) => found,
                None => match next::gethostbyname2_r() {
                    // SAFETY: forwarding the caller's arguments.
                    Some(f) => return unsafe { f(name, family, ret, buf, len, result, h_errnop) },
                    None => return fail(3, libc::ENOSYS),
                },
            },
        };
        let addrs: Vec<IpAddr> = match found {
            Ok(addrs) => addrs
                .into_iter()
                .filter(|a| a.is_ipv6() == (family == libc::AF_INET6))
                .collect(),
            Err(code) => return fail(h_errno_of(code), libc::ENOENT),
        };
        if addrs.is_empty() {
            return fail(1, libc::ENOENT);
        }
        // SAFETY: the caller's buffer of `len` bytes and hostent.
        match unsafe { fill_hostent(cname, family, &addrs, ret, buf, len) } {
            Ok(()) => {
                // SAFETY: `result` is valid for a write.
                unsafe { *result = ret };
                0
            }
            Err(errno) => fail(-1, errno), // NETDB_INTERNAL
        }
    })
}

/// `gethostbyname_r(3)`: IPv4.
///
/// # Safety
/// As `gethostbyname_r(3)`.
#[no_mangle]
pub unsafe extern "C" fn gethostbyname_r(
    name: *const c_char,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    len: usize,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
) -> c_int {
    // SAFETY: the caller's arguments, as gethostbyname2_r takes them.
    unsafe { gethostbyname2_r(name, libc::AF_INET, ret, buf, len, result, h_errnop) }
}

thread_local! {
    /// What `gethostbyname` and `gethostbyname2` return point into (glibc's are
    /// static too; per thread here).
    static HOSTENT: std::cell::RefCell<(libc::hostent, Vec<c_char>)> =
        // SAFETY: hostent is plain data; zeros are null pointers.
        std::cell::RefCell::new((unsafe { std::mem::zeroed() }, vec![0; 4096]));
}

/// `gethostbyname2(3)`: a pointer to this thread's static result.
///
/// # Safety
/// As `gethostbyname2(3)`.
#[no_mangle]
pub unsafe extern "C" fn gethostbyname2(name: *const c_char, family: c_int) -> *mut libc::hostent {
    guard(std::ptr::null_mut(), || {
        if super::default_stack().is_none() && !remote::is_remote() {
            return match next::gethostbyname2() {
                // SAFETY: forwarding the caller's arguments.
                Some(f) => unsafe { f(name, family) },
                None => {
                    set_h_errno(3);
                    std::ptr::null_mut()
                }
            };
        }
        HOSTENT.with(|slot| {
            let Ok(mut slot) = slot.try_borrow_mut() else {
                set_h_errno(2);
                return std::ptr::null_mut();
            };
            let (ret, buf) = &mut *slot;
            let mut result = std::ptr::null_mut();
            let mut h = 0;
            // SAFETY: our own buffer and hostent, which outlive the call (static).
            let code = unsafe {
                gethostbyname2_r(
                    name,
                    family,
                    ret,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut result,
                    &mut h,
                )
            };
            if code != 0 || result.is_null() {
                set_h_errno(h);
            }
            result
        })
    })
}

/// `gethostbyname(3)`: IPv4.
///
/// # Safety
/// As `gethostbyname(3)`.
#[no_mangle]
pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut libc::hostent {
    // SAFETY: the caller's argument.
    unsafe { gethostbyname2(name, libc::AF_INET) }
}

/// `getnameinfo(3)`: the host's name from `/etc/hosts`, else the PTR record the
/// stack's name servers give (its reverse lookups never go to the host's
/// resolver), else numeric. The service, and everything when the program's
/// sockets are the host's, is libc's.
///
/// # Safety
/// As `getnameinfo(3)`.
#[no_mangle]
pub unsafe extern "C" fn getnameinfo(
    addr: *const libc::sockaddr,
    addrlen: libc::socklen_t,
    host: *mut c_char,
    hostlen: libc::socklen_t,
    serv: *mut c_char,
    servlen: libc::socklen_t,
    flags: c_int,
) -> c_int {
    guard(libc::EAI_FAIL, || {
        let Some(next) = next::getnameinfo() else {
            set_errno(libc::ENOSYS);
            return libc::EAI_SYSTEM;
        };
        let on_stack = super::default_stack().is_some() || remote::is_remote();
        if !on_stack || host.is_null() || hostlen == 0 || flags & libc::NI_NUMERICHOST != 0 {
            // SAFETY: forwarding the caller's arguments.
            return unsafe { next(addr, addrlen, host, hostlen, serv, servlen, flags) };
        }
        // Numeric first: the service, and the address's text when no name is known.
        // SAFETY: the caller's arguments, with NI_NUMERICHOST added.
        let code = unsafe {
            next(
                addr,
                addrlen,
                host,
                hostlen,
                serv,
                servlen,
                (flags | libc::NI_NUMERICHOST) & !libc::NI_NAMEREQD,
            )
        };
        if code != 0 {
            return code;
        }
        // SAFETY: libc just wrote a NUL-terminated numeric address into `host`.
        let numeric = unsafe { CStr::from_ptr(host) }
            .to_string_lossy()
            .into_owned();
        let ip = numeric
            .split('%')
            .next()
            .and_then(|a| a.parse::<IpAddr>().ok());
        let hosts = std::fs::read_to_string("/etc/hosts")
            .map(|text| vdestack::dns::Hosts::parse(&text))
            .unwrap_or_default();
        let name = ip.and_then(|ip| {
            hosts
                .name_of(ip)
                .map(str::to_owned)
                .or_else(|| reverse_lookup(ip))
        });
        match name {
            Some(name) => {
                let mut name = name.into_bytes();
                if flags & libc::NI_NOFQDN != 0 {
                    if let Some(dot) = name.iter().position(|&b| b == b'.') {
                        name.truncate(dot);
                    }
                }
                if name.len() >= hostlen as usize {
                    return libc::EAI_OVERFLOW;
                }
                // SAFETY: `host` holds `hostlen` bytes, more than the name and NUL.
                unsafe {
                    std::ptr::copy_nonoverlapping(name.as_ptr().cast::<c_char>(), host, name.len());
                    *host.add(name.len()) = 0;
                }
                0
            }
            None if flags & libc::NI_NAMEREQD != 0 => libc::EAI_NONAME,
            None => 0,
        }
    })
}

/// The name the stack's name servers give `ip` (its PTR record), if any.
fn reverse_lookup(ip: IpAddr) -> Option<String> {
    use vdestack::dns::{reverse_name, RecordType, Response};
    let bytes = stack_query(&reverse_name(ip), RecordType::Ptr.code())?.ok()?;
    let name = Response::parse(&bytes)
        .ok()?
        .ptr_names()
        .into_iter()
        .next()?;
    Some(name.trim_end_matches('.').to_owned())
}

/// A query's response bytes from the program's stack; `None` when its sockets
/// are the host's.
fn stack_query(name: &str, qtype: u16) -> Option<io::Result<Vec<u8>>> {
    if let Some(stack) = super::default_stack() {
        return Some(stack.query_dns(name, vdestack::dns::RecordType::from_code(qtype)));
    }
    if remote::is_remote() {
        let request = Request::Query {
            name: name.to_owned(),
            qtype,
        };
        return Some(match remote::call(None, &request) {
            Ok((Reply::Bytes(bytes), _)) => Ok(bytes),
            Ok(_) => Err(io::Error::from_raw_os_error(libc::EIO)),
            Err(e) => Err(e),
        });
    }
    None
}

/// `res_query(3)` through the program's stack (class IN; `res_search` is the
/// same, as the stack has no search domains): the response copied into
/// `answer` (cut at `anslen`) and its length, or -1 with `h_errno` as glibc
/// sets it (NXDOMAIN: `HOST_NOT_FOUND`; no record: `NO_DATA`; SERVFAIL or no
/// answer: `TRY_AGAIN`; other failures: `NO_RECOVERY`).
///
/// # Safety
/// As `res_query(3)`: `dname` NUL-terminated, `answer` valid for `anslen` bytes.
unsafe fn query_through_stack(
    dname: *const c_char,
    class: c_int,
    qtype: c_int,
    answer: *mut u8,
    anslen: c_int,
) -> Option<c_int> {
    if dname.is_null() || class != 1 {
        return None;
    }
    // SAFETY: `dname` is NUL-terminated (checked non-null).
    let name = unsafe { CStr::from_ptr(dname) }.to_str().ok()?;
    let qtype = u16::try_from(qtype).ok()?;
    let fail = |h| {
        set_h_errno(h);
        Some(-1)
    };
    let bytes = match stack_query(name, qtype)? {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::TimedOut => return fail(2),
        Err(_) => return fail(3),
    };
    if bytes.len() < 12 {
        return fail(3);
    }
    let copied = bytes.len().min(usize::try_from(anslen).unwrap_or(0));
    if !answer.is_null() {
        // SAFETY: the caller's buffer holds `anslen` bytes, `copied` at most.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), answer, copied) };
    }
    let answers = u16::from_be_bytes([bytes[6], bytes[7]]);
    match bytes[3] & 0x0f {
        0 if answers == 0 => fail(4), // NO_DATA
        0 => Some(copied as c_int),
        3 => fail(1), // HOST_NOT_FOUND
        2 => fail(2), // TRY_AGAIN
        _ => fail(3), // NO_RECOVERY
    }
}

macro_rules! res_calls {
    ($($name:ident($($state:ident: $state_ty:ty),*) => $next:ident;)*) => {
        $(
            /// A `res_*` query (see [`query_through_stack`]); libc's when the
            /// program's sockets are the host's.
            ///
            /// # Safety
            /// As `res_query(3)`.
            #[no_mangle]
            pub unsafe extern "C" fn $name(
                $($state: $state_ty,)*
                dname: *const c_char,
                class: c_int,
                qtype: c_int,
                answer: *mut u8,
                anslen: c_int,
            ) -> c_int {
                guard(-1, || {
                    // SAFETY: the caller's arguments, as res_query(3) takes them.
                    if let Some(n) = unsafe { query_through_stack(dname, class, qtype, answer, anslen) } {
                        return n;
                    }
                    match next::$next() {
                        // SAFETY: forwarding the caller's arguments.
                        Some(f) => unsafe { f($($state,)* dname, class, qtype, answer, anslen) },
                        None => {
                            set_h_errno(3);
                            -1
                        }
                    }
                })
            }
        )*
    };
}

res_calls! {
    res_query() => res_query;
    __res_query() => res_query;
    res_search() => res_search;
    __res_search() => res_search;
    res_nquery(state: *mut std::ffi::c_void) => res_nquery;
    __res_nquery(state: *mut std::ffi::c_void) => res_nquery;
    res_nsearch(state: *mut std::ffi::c_void) => res_nsearch;
    __res_nsearch(state: *mut std::ffi::c_void) => res_nsearch;
}
