//! Which descriptors may be stack stream sockets that never connected: the hint
//! that lets the interposed `read` and `readv` answer ENOTCONN at once, as
//! Linux does, where the socket pair would wait forever, at the cost of one
//! atomic load for every other read.
//!
//! `read` is the descriptor's own call (the socket pair's), so it cannot tell a
//! stack socket from any other descriptor without a look-up (an `fstat` and the
//! registry's lock), which every read of every file would pay. Instead,
//! `socket` sets a bit for each stack stream socket it makes; a read on a
//! descriptor whose bit is set asks the stack (`bsd::check_transfer`) and clears
//! the bit once the socket is connected, or found not to be a stack socket (a
//! descriptor closed and reused: `close` is not interposed). A bit is a hint,
//! never the answer: a false one costs one look-up. Descriptors past the table
//! (65,536 and up) and copies made with `dup` are not marked and read as the
//! pair does (waiting).

use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering};

/// Descriptors covered: 64 per word.
const WORDS: usize = 1024;

static MARKED: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];

/// The word and bit of `fd`, if it is covered.
fn place(fd: c_int) -> Option<(&'static AtomicU64, u64)> {
    let fd = usize::try_from(fd).ok()?;
    Some((MARKED.get(fd / 64)?, 1 << (fd % 64)))
}

/// Notes that `fd` is a new stack stream socket (`ty` as given to `socket`).
pub(super) fn made(fd: c_int, ty: c_int) -> c_int {
    if ty & 0xf == libc::SOCK_STREAM {
        if let Some((word, bit)) = place(fd) {
            word.fetch_or(bit, Ordering::Relaxed);
        }
    }
    fd
}

/// Whether `fd` may be a stack stream socket that is not connected yet.
pub(super) fn may_be(fd: c_int) -> bool {
    place(fd).is_some_and(|(word, bit)| word.load(Ordering::Relaxed) & bit != 0)
}

/// `fd` is connected, or not a stack socket: its reads need no look again.
pub(super) fn settled(fd: c_int) {
    if let Some((word, bit)) = place(fd) {
        word.fetch_and(!bit, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_sockets_are_marked_until_settled() {
        assert!(!may_be(-1) && !may_be(1 << 20));
        made(70_000, libc::SOCK_STREAM);
        made(9, libc::SOCK_DGRAM);
        assert!(!may_be(9));
        made(10, libc::SOCK_STREAM | libc::SOCK_NONBLOCK);
        assert!(may_be(10) && !may_be(11));
        settled(10);
        assert!(!may_be(10));
    }
}
