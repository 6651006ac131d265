//! The stack's interfaces for the libc calls that name them: `if_nametoindex`
//! and `if_indextoname` answer from the default stack, or under `vdestack run`
//! from the host's (`Request::Interfaces`), so that a program sees the
//! interfaces its sockets are on, not the host's. With no stack, libc answers.

use super::protocol::{IfInfo, Reply, Request};
use super::{guard, next, remote, set_errno};
use std::ffi::{c_char, c_uint, CStr};

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
