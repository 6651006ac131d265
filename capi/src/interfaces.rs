//! The stack's interfaces for the libc calls that name them: `if_nametoindex`,
//! `if_indextoname`, `if_nameindex`, `getifaddrs` and the SIOCGIF* ioctls on a
//! stack socket answer from the default stack, or under `vdestack run`
//! from the host's (`Request::Interfaces`), so that a program sees the
//! interfaces its sockets are on, not the host's. With no stack, libc answers.

use super::protocol::{IfInfo, Reply, Request};
use super::{guard, next, remote, set_errno};
use std::ffi::{c_char, c_int, c_uint, CStr};
use std::net::{IpAddr, Ipv4Addr};

/// The interfaces of the stack the program's sockets are on; `None` when they
/// are the host's (no default stack, not under `vdestack run`).
fn stack_interfaces() -> Option<Result<Vec<IfInfo>, i32>> {
    if let Some(stack) = super::default_stack() {
        return Some(
            stack
                .interfaces()
                .map(|list| list.iter().map(IfInfo::from).collect())
                .map_err(|e| vdestack::bsd::errno(&e)),
        );
    }
    if remote::is_remote() {
        return Some(match remote::call(None, &Request::Interfaces) {
            Ok((Reply::Interfaces(list), _)) => Ok(list),
            Ok(_) => Err(libc::EIO),
            Err(e) => Err(vdestack::bsd::errno(&e)),
        });
    }
    None
}

/// `if_nametoindex(3)`: 0 with `ENODEV` for a name the stack does not have.
///
/// # Safety
/// As `if_nametoindex(3)`: `name` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn if_nametoindex(name: *const c_char) -> c_uint {
    guard(0, || {
        let Some(list) = stack_interfaces() else {
            return match next::if_nametoindex() {
                // SAFETY: forwarding the program's own argument to libc's function.
                Some(f) => unsafe { f(name) },
                None => {
                    set_errno(libc::ENOSYS);
                    0
                }
            };
        };
        if name.is_null() {
            set_errno(libc::EINVAL);
            return 0;
        }
        // SAFETY: the caller passes a NUL-terminated string (checked non-null).
        let name = unsafe { CStr::from_ptr(name) }.to_bytes();
        match list {
            Ok(list) => match list.iter().find(|i| i.name.as_bytes() == name) {
                Some(i) => i.index,
                None => {
                    set_errno(libc::ENODEV);
                    0
                }
            },
            Err(errno) => {
                set_errno(errno);
                0
            }
        }
    })
}

/// `if_indextoname(3)`: NULL with `ENXIO` for an index the stack does not have.
///
/// # Safety
/// As `if_indextoname(3)`: `name` valid for writes of `IF_NAMESIZE` bytes.
#[no_mangle]
pub unsafe extern "C" fn if_indextoname(index: c_uint, name: *mut c_char) -> *mut c_char {
    guard(std::ptr::null_mut(), || {
        let Some(list) = stack_interfaces() else {
            return match next::if_indextoname() {
                // SAFETY: forwarding the program's own arguments to libc's function.
                Some(f) => unsafe { f(index, name) },
                None => {
                    set_errno(libc::ENOSYS);
                    std::ptr::null_mut()
                }
            };
        };
        let found = match list {
            Ok(list) => list.into_iter().find(|i| i.index == index),
            Err(errno) => {
                set_errno(errno);
                return std::ptr::null_mut();
            }
        };
        match found {
            Some(i) if !name.is_null() && i.name.len() < libc::IF_NAMESIZE => {
                // SAFETY: the caller gives IF_NAMESIZE writable bytes; the name and
                // its NUL fit (checked above).
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        i.name.as_ptr().cast::<c_char>(),
                        name,
                        i.name.len(),
                    );
                    *name.add(i.name.len()) = 0;
                }
                name
            }
            Some(_) => {
                set_errno(libc::EINVAL);
                std::ptr::null_mut()
            }
            None => {
                set_errno(libc::ENXIO);
                std::ptr::null_mut()
            }
        }
    })
}

/// The interfaces' list as `if_nameindex(3)` gives it: one `malloc`'d array
/// ended by a zero entry, each name `malloc`'d, the layout glibc's
/// `if_freenameindex` frees (so a list of ours freed by libc's, or the other way
/// round, is freed right).
#[no_mangle]
pub extern "C" fn if_nameindex() -> *mut libc::if_nameindex {
    guard(std::ptr::null_mut(), || {
        let list = match stack_interfaces() {
            None => {
                return match next::if_nameindex() {
                    // SAFETY: libc's function, which takes no argument.
                    Some(f) => unsafe { f() },
                    None => {
                        set_errno(libc::ENOSYS);
                        std::ptr::null_mut()
                    }
                };
            }
            Some(Err(errno)) => {
                set_errno(errno);
                return std::ptr::null_mut();
            }
            Some(Ok(list)) => list,
        };
        let size = std::mem::size_of::<libc::if_nameindex>() * (list.len() + 1);
        // SAFETY: malloc of a positive size; checked for null below.
        let array = unsafe { libc::malloc(size) }.cast::<libc::if_nameindex>();
        if array.is_null() {
            set_errno(libc::ENOBUFS);
            return array;
        }
        for (at, i) in list.iter().enumerate() {
            let name = std::ffi::CString::new(i.name.as_str()).unwrap_or_default();
            // SAFETY: `at` is inside the array of list.len() + 1 entries; strdup
            // copies a NUL-terminated string.
            unsafe {
                array.add(at).write(libc::if_nameindex {
                    if_index: i.index,
                    if_name: libc::strdup(name.as_ptr()),
                });
            }
        }
        // SAFETY: the last entry of the array.
        unsafe {
            array.add(list.len()).write(libc::if_nameindex {
                if_index: 0,
                if_name: std::ptr::null_mut(),
            });
        }
        array
    })
}

/// `if_freenameindex(3)`: frees a list of [`if_nameindex`]'s or libc's (the
/// same layout).
///
/// # Safety
/// As `if_freenameindex(3)`: `list` from `if_nameindex`, freed once.
#[no_mangle]
pub unsafe extern "C" fn if_freenameindex(list: *mut libc::if_nameindex) {
    guard((), || {
        if list.is_null() {
            return;
        }
        let mut at = list;
        // SAFETY: the list ends with a zero entry; each name is malloc'd.
        unsafe {
            while !((*at).if_name.is_null() && (*at).if_index == 0) {
                libc::free((*at).if_name.cast());
                at = at.add(1);
            }
            libc::free(list.cast());
        }
    })
}

/// One entry of [`getifaddrs`]'s block: the `ifaddrs` first, so that the first
/// entry's address is the block's.
#[repr(C)]
struct IfaddrsEntry {
    ifa: libc::ifaddrs,
    addr: libc::sockaddr_storage,
    netmask: libc::sockaddr_storage,
    broadcast: libc::sockaddr_storage,
    name: [c_char; libc::IF_NAMESIZE],
}

/// Writes `ip` as a `sockaddr_in`/`sockaddr_in6` into `storage`.
fn write_sockaddr(storage: &mut libc::sockaddr_storage, ip: IpAddr, scope: u32) {
    // SAFETY: sockaddr_storage is large enough and aligned for either.
    unsafe {
        match ip {
            IpAddr::V4(a) => {
                let sin = (storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                (*sin).sin_family = libc::AF_INET as libc::sa_family_t;
                (*sin).sin_addr.s_addr = u32::from_ne_bytes(a.octets());
            }
            IpAddr::V6(a) => {
                let sin6 = (storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
                (*sin6).sin6_family = libc::AF_INET6 as libc::sa_family_t;
                (*sin6).sin6_addr.s6_addr = a.octets();
                if a.segments()[0] & 0xffc0 == 0xfe80 {
                    (*sin6).sin6_scope_id = scope;
                }
            }
        }
    }
}

/// The IPv4 broadcast address of `addr/prefix`.
fn broadcast(addr: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(u32::from(addr) | !mask)
}

/// `getifaddrs(3)`: the stack's interfaces, an `AF_PACKET` entry for each (its
/// MAC) and one per address, in one `malloc`'d block whose first entry is the
/// list, as glibc makes it (so glibc's `freeifaddrs`, a `free`, frees ours).
///
/// # Safety
/// As `getifaddrs(3)`: `out` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn getifaddrs(out: *mut *mut libc::ifaddrs) -> c_int {
    guard(-1, || {
        let list = match stack_interfaces() {
            None => {
                return match next::getifaddrs() {
                    // SAFETY: forwarding the program's own argument.
                    Some(f) => unsafe { f(out) },
                    None => {
                        set_errno(libc::ENOSYS);
                        -1
                    }
                };
            }
            Some(Err(errno)) => {
                set_errno(errno);
                return -1;
            }
            Some(Ok(list)) => list,
        };
        if out.is_null() {
            set_errno(libc::EFAULT);
            return -1;
        }
        let count: usize = list.iter().map(|i| 1 + i.addrs.len()).sum();
        if count == 0 {
            // SAFETY: `out` is valid for a write (checked non-null).
            unsafe { *out = std::ptr::null_mut() };
            return 0;
        }
        let size = std::mem::size_of::<IfaddrsEntry>() * count;
        // SAFETY: calloc of `count` entries, all zeros (null pointers, AF_UNSPEC).
        let block = unsafe { libc::calloc(count, std::mem::size_of::<IfaddrsEntry>()) }
            .cast::<IfaddrsEntry>();
        if block.is_null() || size == 0 {
            set_errno(libc::ENOMEM);
            return -1;
        }
        let mut at = 0usize;
        for i in &list {
            let mut entries: Vec<Option<(IpAddr, u8)>> = vec![None];
            entries.extend(i.addrs.iter().copied().map(Some));
            for entry in entries {
                // SAFETY: `at` < count: one entry per interface and per address.
                let e = unsafe { &mut *block.add(at) };
                for (dst, src) in e
                    .name
                    .iter_mut()
                    .zip(i.name.bytes().take(libc::IF_NAMESIZE - 1))
                {
                    *dst = src as c_char;
                }
                e.ifa.ifa_name = e.name.as_mut_ptr();
                e.ifa.ifa_flags = i.flags;
                match entry {
                    None => {
                        // SAFETY: sockaddr_storage holds a sockaddr_ll.
                        let ll = unsafe {
                            &mut *(&mut e.addr as *mut libc::sockaddr_storage)
                                .cast::<libc::sockaddr_ll>()
                        };
                        ll.sll_family = libc::AF_PACKET as u16;
                        ll.sll_ifindex = i.index as c_int;
                        ll.sll_hatype = if i.flags & libc::IFF_LOOPBACK as u32 != 0 {
                            libc::ARPHRD_LOOPBACK
                        } else {
                            libc::ARPHRD_ETHER
                        };
                        ll.sll_halen = 6;
                        ll.sll_addr[..6].copy_from_slice(&i.mac);
                        e.ifa.ifa_addr = (&mut e.addr as *mut libc::sockaddr_storage).cast();
                    }
                    Some((ip, prefix)) => {
                        write_sockaddr(&mut e.addr, ip, i.index);
                        write_sockaddr(&mut e.netmask, vdestack::cmd::netmask(ip, prefix), 0);
                        e.ifa.ifa_addr = (&mut e.addr as *mut libc::sockaddr_storage).cast();
                        e.ifa.ifa_netmask = (&mut e.netmask as *mut libc::sockaddr_storage).cast();
                        if let IpAddr::V4(v4) = ip {
                            if i.flags & libc::IFF_BROADCAST as u32 != 0 {
                                write_sockaddr(
                                    &mut e.broadcast,
                                    IpAddr::V4(broadcast(v4, prefix)),
                                    0,
                                );
                                e.ifa.ifa_ifu =
                                    (&mut e.broadcast as *mut libc::sockaddr_storage).cast();
                            }
                        }
                    }
                }
                if at + 1 < count {
                    // SAFETY: the next entry is inside the block.
                    e.ifa.ifa_next = unsafe { &mut (*block.add(at + 1)).ifa };
                }
                at += 1;
            }
        }
        // SAFETY: `out` is valid for a write; the first entry starts the block.
        unsafe { *out = block.cast() };
        0
    })
}

/// `freeifaddrs(3)`: frees a list of [`getifaddrs`]'s or glibc's, each one
/// block.
///
/// # Safety
/// As `freeifaddrs(3)`: `list` from `getifaddrs`, freed once.
#[no_mangle]
pub unsafe extern "C" fn freeifaddrs(list: *mut libc::ifaddrs) {
    // SAFETY: one malloc'd block (ours, or glibc's, which allocates it so too).
    guard((), || unsafe { libc::free(list.cast()) })
}

/// Offsets in `struct ifreq`: the name, then the union of the request's value.
const IFR_VALUE: usize = libc::IFNAMSIZ;

/// Answers the SIOCGIF* `request` on a stack socket from the stack's
/// interfaces; `None` for any other request.
pub(super) fn ioctl(request: libc::c_ulong, arg: *mut std::ffi::c_void) -> Option<c_int> {
    const REQUESTS: [libc::c_ulong; 9] = [
        libc::SIOCGIFCONF,
        libc::SIOCGIFINDEX,
        libc::SIOCGIFNAME,
        libc::SIOCGIFFLAGS,
        libc::SIOCGIFADDR,
        libc::SIOCGIFNETMASK,
        libc::SIOCGIFBRDADDR,
        libc::SIOCGIFHWADDR,
        libc::SIOCGIFMTU,
    ];
    if !REQUESTS.contains(&request) {
        return None;
    }
    let list = match stack_interfaces()? {
        Ok(list) => list,
        Err(errno) => return Some(fail_with(errno)),
    };
    if arg.is_null() {
        return Some(fail_with(libc::EFAULT));
    }
    if request == libc::SIOCGIFCONF {
        return Some(ifconf(&list, arg.cast()));
    }
    let ifr = arg.cast::<u8>();
    // SAFETY: the argument of a SIOCGIF* request is the program's struct ifreq
    // (40 bytes on Linux); every read and write below stays inside it.
    unsafe {
        if request == libc::SIOCGIFNAME {
            let index = ifr.add(IFR_VALUE).cast::<c_int>().read_unaligned();
            let Some(i) = list.iter().find(|i| i.index as c_int == index) else {
                return Some(fail_with(libc::ENODEV));
            };
            let mut name = [0u8; libc::IFNAMSIZ];
            for (d, s) in name.iter_mut().zip(i.name.bytes().take(libc::IFNAMSIZ - 1)) {
                *d = s;
            }
            std::ptr::copy_nonoverlapping(name.as_ptr(), ifr, libc::IFNAMSIZ);
            return Some(0);
        }
        let mut name = [0u8; libc::IFNAMSIZ];
        std::ptr::copy_nonoverlapping(ifr, name.as_mut_ptr(), libc::IFNAMSIZ);
        let len = name.iter().position(|&b| b == 0).unwrap_or(libc::IFNAMSIZ);
        let Some(i) = list.iter().find(|i| i.name.as_bytes() == &name[..len]) else {
            return Some(fail_with(libc::ENODEV));
        };
        let value = ifr.add(IFR_VALUE);
        let v4 = i.addrs.iter().find_map(|&(a, p)| match a {
            IpAddr::V4(a) => Some((a, p)),
            IpAddr::V6(_) => None,
        });
        // The union has room for a sockaddr (16 bytes).
        let sockaddr_v4 = |addr: Ipv4Addr| write_sockaddr_in(value, addr);
        match request {
            libc::SIOCGIFINDEX => value.cast::<c_int>().write_unaligned(i.index as c_int),
            libc::SIOCGIFFLAGS => value
                .cast::<libc::c_short>()
                .write_unaligned(i.flags as libc::c_short),
            libc::SIOCGIFMTU => value.cast::<c_int>().write_unaligned(i.mtu as c_int),
            libc::SIOCGIFHWADDR => {
                let family = if i.flags & libc::IFF_LOOPBACK as u32 != 0 {
                    libc::ARPHRD_LOOPBACK
                } else {
                    libc::ARPHRD_ETHER
                };
                std::ptr::write_bytes(value, 0, 16);
                value.cast::<u16>().write_unaligned(family);
                std::ptr::copy_nonoverlapping(i.mac.as_ptr(), value.add(2), 6);
            }
            _ => {
                let Some((addr, prefix)) = v4 else {
                    return Some(fail_with(libc::EADDRNOTAVAIL));
                };
                match request {
                    libc::SIOCGIFADDR => sockaddr_v4(addr),
                    libc::SIOCGIFNETMASK => {
                        let IpAddr::V4(mask) = vdestack::cmd::netmask(IpAddr::V4(addr), prefix)
                        else {
                            return Some(fail_with(libc::EINVAL));
                        };
                        sockaddr_v4(mask)
                    }
                    _ => {
                        if i.flags & libc::IFF_BROADCAST as u32 == 0 {
                            return Some(fail_with(libc::EADDRNOTAVAIL));
                        }
                        sockaddr_v4(broadcast(addr, prefix))
                    }
                }
            }
        }
    }
    Some(0)
}

/// Writes a `sockaddr_in` for `addr` at `at`.
///
/// # Safety
/// `at` valid for writes of 16 bytes.
unsafe fn write_sockaddr_in(at: *mut u8, addr: Ipv4Addr) {
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    sin.sin_addr.s_addr = u32::from_ne_bytes(addr.octets());
    // SAFETY: the caller gives 16 writable bytes; sockaddr_in is 16 bytes.
    unsafe { at.cast::<libc::sockaddr_in>().write_unaligned(sin) };
}

/// SIOCGIFCONF: an `ifreq` per IPv4 address (name and address), as Linux
/// lists them; a null buffer asks for the length needed.
fn ifconf(list: &[IfInfo], conf: *mut libc::ifconf) -> c_int {
    let entries: Vec<(&str, Ipv4Addr)> = list
        .iter()
        .flat_map(|i| {
            i.addrs.iter().filter_map(move |&(a, _)| match a {
                IpAddr::V4(a) => Some((i.name.as_str(), a)),
                IpAddr::V6(_) => None,
            })
        })
        .collect();
    let size = std::mem::size_of::<libc::ifreq>();
    // SAFETY: `conf` is the program's struct ifconf (checked non-null); its
    // buffer, when given, holds ifc_len bytes, and only whole ifreqs that fit
    // are written.
    unsafe {
        let buf = (*conf).ifc_ifcu.ifcu_buf.cast::<u8>();
        if buf.is_null() {
            (*conf).ifc_len = (entries.len() * size) as c_int;
            return 0;
        }
        let room = usize::try_from((*conf).ifc_len).unwrap_or(0) / size;
        let mut written = 0;
        for (name, addr) in entries.into_iter().take(room) {
            let ifr = buf.add(written * size);
            std::ptr::write_bytes(ifr, 0, size);
            for (k, b) in name.bytes().take(libc::IFNAMSIZ - 1).enumerate() {
                *ifr.add(k) = b;
            }
            write_sockaddr_in(ifr.add(IFR_VALUE), addr);
            written += 1;
        }
        (*conf).ifc_len = (written * size) as c_int;
    }
    0
}

fn fail_with(errno: c_int) -> c_int {
    set_errno(errno);
    -1
}
