//! Memory whose pages the kernel gives when they are first written and takes back
//! on request: the storage of TCP rings.
//!
//! A ring of the heap costs pages as soon as it is made (the allocator writes its
//! headers beside it and zeroes recycled memory), 64 KiB rings per direction and
//! connection included. A private anonymous mapping costs nothing until a byte is
//! written into a page, and [`forget_pages`] gives whole pages back (they read as
//! zero again). The pump lends such mappings to the engine for its TCP sockets'
//! rings (`pump/rings.rs`, `engine/rings.rs`).

use rustix::mm::{self, Advice, MapFlags, ProtFlags};
use std::io;
use std::ptr::NonNull;

/// The size of a page (the unit the kernel gives and takes back).
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

/// A private anonymous mapping, unmapped when dropped.
///
/// Its bytes are lent out once, as `'static` slices ([`Pages::lend`], an unsafe
/// call): whoever lends them promises to keep the `Pages` until the slices are
/// gone. That is the contract the engine keeps for its sockets' rings: a socket's
/// lease (this mapping) goes back only after the socket holding the slices was
/// dropped (see `engine/rings.rs`).
#[derive(Debug)]
pub(crate) struct Pages {
    addr: NonNull<u8>,
    len: usize,
    lent: bool,
}

// SAFETY: the mapping is plain memory, owned by this value alone; moving it to
// another thread moves that ownership.
unsafe impl Send for Pages {}

impl Pages {
    /// `len` bytes (rounded up to whole pages) of zeroed memory, none of it
    /// resident yet. `MAP_NORESERVE`: no swap is set aside for pages never
    /// written.
    pub(crate) fn map(len: usize) -> io::Result<Pages> {
        let len = len.max(1).next_multiple_of(page_size());
        // SAFETY: a new anonymous mapping at an address the kernel picks touches
        // no existing memory.
        let addr = unsafe {
            mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }?;
        let addr = NonNull::new(addr.cast::<u8>()).ok_or(io::ErrorKind::OutOfMemory)?;
        Ok(Pages {
            addr,
            len,
            lent: false,
        })
    }

    /// The mapping's length in bytes (whole pages).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The mapping as two slices of `first` and `second` bytes, the second
    /// starting on a page boundary; `None` if they do not fit or the mapping was
    /// lent already.
    ///
    /// # Safety
    ///
    /// The slices claim to live forever but are valid only while this `Pages`
    /// lives: the caller keeps it (neither drops nor forgets-and-unmaps it) until
    /// neither slice, nor anything made of them, is used again.
    pub(crate) unsafe fn lend(
        &mut self,
        first: usize,
        second: usize,
    ) -> Option<(&'static mut [u8], &'static mut [u8])> {
        let at = first.next_multiple_of(page_size());
        if self.lent || at.checked_add(second)? > self.len {
            return None;
        }
        self.lent = true;
        // SAFETY: both ranges lie inside the mapping, readable and writable, and
        // do not overlap; the mapping is lent once, so nothing else refers to
        // these bytes. The slices are valid while the mapping exists, which the
        // caller guarantees for as long as they are used (this function's
        // contract).
        unsafe {
            let base = self.addr.as_ptr();
            Some((
                std::slice::from_raw_parts_mut(base, first),
                std::slice::from_raw_parts_mut(base.add(at), second),
            ))
        }
    }
}

impl Pages {
    /// The same mapping, zeroed, its pages given back, to be lent again: what
    /// dropping it and mapping as much anew would give, without the two system
    /// calls, and without the unmapping's cost to every CPU that runs this
    /// process.
    ///
    /// Safe for the same reason dropping it is: by [`Pages::lend`]'s contract,
    /// nothing made of the slices lent is used once their owner lets the mapping
    /// go, and this takes it by value.
    pub(crate) fn recycle(mut self) -> Pages {
        // SAFETY: the whole mapping, which this value owns and nothing else
        // refers to (as above); MADV_DONTNEED on a private anonymous mapping makes
        // it read as zero, and its pages go back to the kernel.
        let cleared =
            unsafe { mm::madvise(self.addr.as_ptr().cast(), self.len, Advice::LinuxDontNeed) };
        if cleared.is_err() {
            // SAFETY: as above: the mapping is this value's alone, `len` bytes,
            // readable and writable.
            unsafe { std::ptr::write_bytes(self.addr.as_ptr(), 0, self.len) };
        }
        self.lent = false;
        self
    }

    /// The mapping's length in bytes, whole pages (what [`Pages::map`] makes of
    /// a length).
    pub(crate) fn size(&self) -> usize {
        self.len
    }
}

impl Pages {
    /// How many of the mapping's pages are resident.
    #[cfg(test)]
    pub(crate) fn resident(&self) -> usize {
        // SAFETY: the mapping is valid for `len` bytes while `self` lives, and
        // only read here, by the kernel (mincore reads no byte of it).
        let bytes = unsafe { std::slice::from_raw_parts(self.addr.as_ptr(), self.len) };
        resident_pages(bytes)
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: the mapping is this value's, and by `lend`'s contract nothing
        // refers to it any more.
        let _ = unsafe { mm::munmap(self.addr.as_ptr().cast(), self.len) };
    }
}

/// Zeroes `bytes`, giving the whole pages among them back to the kernel: they
/// cost nothing until written again. Bytes in the partial pages at either end
/// are zeroed by hand.
pub(crate) fn forget_pages(bytes: &mut [u8]) {
    let page = page_size();
    let start = bytes.as_ptr() as usize;
    let first = start.next_multiple_of(page) - start;
    let whole = bytes.len().saturating_sub(first) / page * page;
    if whole == 0 {
        bytes.fill(0);
        return;
    }
    let (head, rest) = bytes.split_at_mut(first);
    let (middle, tail) = rest.split_at_mut(whole);
    head.fill(0);
    tail.fill(0);
    // SAFETY: `middle` is whole pages of memory this call has exclusive access
    // to (it holds `&mut`); MADV_DONTNEED on private anonymous memory (the heap,
    // a `Pages`) makes it read as zero afterwards, a valid value for bytes. On
    // other memory it leaves the contents, also valid; and if the kernel refuses,
    // the bytes are zeroed by hand.
    let done = unsafe { mm::madvise(middle.as_mut_ptr().cast(), whole, Advice::LinuxDontNeed) };
    if done.is_err() {
        middle.fill(0);
    }
}

/// How many of the pages under `bytes` are resident (for tests of what memory
/// costs).
#[cfg(test)]
pub(crate) fn resident_pages(bytes: &[u8]) -> usize {
    let page = page_size();
    let start = bytes.as_ptr() as usize / page * page;
    let end = (bytes.as_ptr() as usize + bytes.len()).next_multiple_of(page);
    let mut residency = vec![0u8; (end - start) / page];
    // SAFETY: the range covers mapped pages (those under `bytes`), and
    // `residency` has one byte per page, as mincore(2) writes.
    let ret = unsafe {
        libc::mincore(
            start as *mut libc::c_void,
            end - start,
            residency.as_mut_ptr(),
        )
    };
    assert_eq!(ret, 0, "mincore: {}", io::Error::last_os_error());
    residency.iter().filter(|&&r| r & 1 == 1).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_come_when_written_and_go_when_forgotten() {
        let page = page_size();
        let mut pages = Pages::map(64 * 1024 + 1).unwrap();
        assert_eq!(pages.len(), 64 * 1024 + page);
        // SAFETY: `pages` outlives the slices, which die with this test's end.
        let (rx, tx) = unsafe { pages.lend(64 * 1024, 100) }.unwrap();
        // SAFETY: refused (lent already): no slice is made.
        assert!(unsafe { pages.lend(1, 1) }.is_none(), "lent once");
        assert_eq!((rx.len(), tx.len()), (64 * 1024, 100));
        assert_eq!(tx.as_ptr() as usize % page, 0);
        assert_eq!(
            resident_pages(rx) + resident_pages(tx),
            0,
            "nothing until written"
        );
        rx[..3 * page].fill(7);
        tx[0] = 1;
        assert_eq!((resident_pages(rx), resident_pages(tx)), (3, 1));
        forget_pages(rx);
        assert_eq!(resident_pages(rx), 0);
        assert!(rx.iter().all(|&b| b == 0), "forgotten pages read as zero");
        // A slice that is not page-aligned: its whole pages go, its ends are
        // zeroed.
        rx.fill(9);
        forget_pages(&mut rx[10..2 * page + 10]);
        // (Reading a forgotten page maps the kernel's zero page: look first.)
        assert_eq!(resident_pages(&rx[page..2 * page]), 0);
        assert!(rx[10..2 * page + 10].iter().all(|&b| b == 0));
        assert_eq!((rx[9], rx[2 * page + 10]), (9, 9));
    }

    #[test]
    fn a_recycled_mapping_is_zeroed_holds_no_page_and_lends_again() {
        let mut pages = Pages::map(8 * page_size()).unwrap();
        let at = pages.addr;
        {
            // SAFETY: the slices die at the end of this block, before the mapping
            // is recycled.
            let (rx, tx) = unsafe { pages.lend(page_size(), page_size()) }.unwrap();
            rx.fill(3);
            tx.fill(4);
        }
        let mut pages = pages.recycle();
        assert_eq!(pages.addr, at, "the same mapping");
        // SAFETY: `pages` outlives the slices, which die with this test's end.
        let (rx, tx) = unsafe { pages.lend(page_size(), page_size()) }.expect("lent again");
        assert_eq!(resident_pages(rx) + resident_pages(tx), 0);
        assert!(rx.iter().chain(tx.iter()).all(|&b| b == 0));
    }

    #[test]
    fn heap_memory_can_be_forgotten_too() {
        let mut heap = vec![5u8; 100_000];
        forget_pages(&mut heap[1..]);
        assert_eq!(heap[0], 5);
        assert!(heap[1..].iter().all(|&b| b == 0));
    }
}
