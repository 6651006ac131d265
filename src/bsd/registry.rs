//! The stack sockets the BSD calls know, found by the inode of a descriptor's socket.
//!
//! # Finding a socket
//!
//! A descriptor of a stack socket is the application end of a socket pair. The
//! registry maps the inode of that end to the [`StackSocket`], so that every `dup`
//! of the descriptor (`dup`, `dup2`, `fcntl(F_DUPFD)`, one inherited by a child) is
//! the same socket, as it is for the kernel. Nothing here counts descriptors: the
//! kernel does that already.
//!
//! # Forgetting a socket
//!
//! The pump keeps an [`EndToken`](crate::pump::EndToken) beside the pump end of every
//! socket the registry knows, and drops it exactly when it lets that end go: when the
//! application end hangs up (its last descriptor, in every process, was closed), but
//! also when the connection ended while the program still holds its descriptor (a
//! reset, a failed non-blocking connect whose `SO_ERROR` is still to be read, both
//! directions closed), and when the stack is deleted. The entry's
//! [`EndWatch`] sees it released. A released entry cannot be
//! forgotten at once, since the program may still ask it for an error or its addresses;
//! nor kept for ever. So released entries are kept, and swept: when the table has
//! doubled since the last sweep, the sweep reads which sockets the process still
//! holds descriptors of (`/proc/self/fd`) and keeps those, however long ago the pump
//! let them go (a connection the peer reset, a server's socket the peer closed long
//! ago: forgetting them would make the program's calls answer as the AF_UNIX pair
//! underneath); of the others, released entries of stacks that are gone are
//! forgotten, and the ones released longest ago are, beyond as many as are still
//! held (at least [`MIN_RELEASED`]; by age alone where `/proc` cannot be read).
//! Memory stays proportional to the sockets in use, and each registration pays O(1)
//! amortised (a sweep costs a system call per open descriptor). A released entry is
//! never wrong, only possibly unused: an inode number is not reused while a
//! descriptor still refers to its socket.
//!
//! # fork
//!
//! The table's lock is taken by `pthread_atfork` handlers before `fork()` and
//! released after it in both processes, so that a child never finds it held by a
//! thread that does not exist there. The child handler also counts a new process
//! generation: an entry made in an earlier generation is the parent's socket,
//! inherited; the calls of `bsd` refuse it with EBADF before taking any lock of the
//! socket itself (another thread of the parent may have held one at the fork, and the
//! parent's pump, which would answer, is not in this process). `read` and `write` on
//! an inherited connection keep working: the parent's pump still serves the pair.

use super::stack_socket::StackSocket;
use crate::pump::EndWatch;
use crate::sys;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};

/// Released entries kept at least, beyond the sockets still held.
const MIN_RELEASED: usize = 1024;

/// The table size of the first sweep.
const FIRST_SWEEP: usize = 2 * MIN_RELEASED;

struct Entry {
    socket: Arc<StackSocket>,
    /// Released once the pump let go of the socket's pump end.
    watch: EndWatch,
    /// The process generation that registered it.
    generation: u64,
    /// The sweep that first found it released (the oldest are forgotten first).
    released_at: Option<u64>,
}

struct Table {
    /// By the inode of the application end.
    entries: BTreeMap<u64, Entry>,
    /// The size at which the next registration sweeps.
    sweep_at: usize,
    sweeps: u64,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    entries: BTreeMap::new(),
    sweep_at: FIRST_SWEEP,
    sweeps: 0,
});

/// How many entries the table holds: while 0, a look-up needs no `fstat` and no lock.
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// The process generation: bumped in each child `fork()` makes.
static GENERATION: AtomicU64 = AtomicU64::new(0);

fn lock() -> MutexGuard<'static, Table> {
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// The table's guard, held by the forking thread across `fork()`.
    static HELD_ACROSS_FORK: RefCell<Option<MutexGuard<'static, Table>>> =
        const { RefCell::new(None) };
}

extern "C" fn before_fork() {
    HELD_ACROSS_FORK.with(|held| *held.borrow_mut() = Some(lock()));
}

extern "C" fn after_fork_in_parent() {
    HELD_ACROSS_FORK.with(|held| drop(held.borrow_mut().take()));
}

extern "C" fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
    HELD_ACROSS_FORK.with(|held| drop(held.borrow_mut().take()));
}

/// Registers the fork handlers, once per process (a child inherits them).
fn guard_forks() -> io::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = sys::at_fork(before_fork, after_fork_in_parent, after_fork_in_child);
    });
    result
}

/// Makes `socket` the one the descriptor `fd` (its application end) refers to, until
/// `watch` is released and a sweep forgets it.
pub(super) fn register(
    fd: BorrowedFd<'_>,
    socket: Arc<StackSocket>,
    watch: EndWatch,
) -> io::Result<()> {
    guard_forks()?;
    let ino = sys::socket_inode(fd).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOTSOCK))?;
    let entry = Entry {
        socket,
        watch,
        generation: GENERATION.load(Ordering::Relaxed),
        released_at: None,
    };
    let mut table = lock();
    table.entries.insert(ino, entry);
    let forgotten = if table.entries.len() >= table.sweep_at {
        // What the process still holds is kept, however long ago the pump let
        // it go; if that cannot be read, the age decides alone.
        let open = sys::open_socket_inodes().ok();
        table.sweep(open.as_ref())
    } else {
        Vec::new()
    };
    COUNT.store(table.entries.len(), Ordering::Relaxed);
    drop(table);
    // Sockets are dropped outside the lock (a connection's drop may close descriptors).
    drop(forgotten);
    Ok(())
}

/// A socket the registry knows.
pub(super) struct Found {
    pub(super) socket: Arc<StackSocket>,
    /// Registered by the parent before this process was forked.
    pub(super) inherited: bool,
}

/// The stack socket `fd` refers to, if any.
pub(super) fn lookup(fd: BorrowedFd<'_>) -> Option<Found> {
    if COUNT.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let ino = sys::socket_inode(fd)?;
    let table = lock();
    let entry = table.entries.get(&ino)?;
    Some(Found {
        socket: entry.socket.clone(),
        inherited: entry.generation != GENERATION.load(Ordering::Relaxed),
    })
}

impl Table {
    /// Forgets the released entries no longer worth keeping (see the module doc);
    /// returns their sockets, to drop once the lock is released. An entry whose
    /// inode is in `open` (the sockets the process holds descriptors of) counts
    /// as held.
    fn sweep(&mut self, open: Option<&HashSet<u64>>) -> Vec<Arc<StackSocket>> {
        self.sweeps += 1;
        let sweep = self.sweeps;
        let mut held = 0;
        let mut released = Vec::new();
        let mut forgotten = Vec::new();
        for (&ino, entry) in self.entries.iter_mut() {
            if !entry.watch.released() || open.is_some_and(|open| open.contains(&ino)) {
                entry.released_at = None;
                held += 1;
            } else if entry.socket.stack_gone() {
                forgotten.push(ino);
            } else {
                released.push((*entry.released_at.get_or_insert(sweep), ino));
            }
        }
        let keep = held.max(MIN_RELEASED);
        if released.len() > keep {
            released.sort_unstable();
            let excess = released.len() - keep;
            forgotten.extend(released[..excess].iter().map(|&(_, ino)| ino));
        }
        let sockets = forgotten
            .iter()
            .filter_map(|ino| self.entries.remove(ino))
            .map(|entry| entry.socket)
            .collect();
        self.sweep_at = (2 * self.entries.len()).max(FIRST_SWEEP);
        sockets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pump::EndToken;
    use crate::Stack;

    /// A table of `held` entries whose pump still holds the end, then `released`
    /// ones it let go of, on `stack`; returns it with the tokens it holds.
    fn table(stack: &Stack, held: usize, released: usize) -> (Table, Vec<EndToken>) {
        let mut table = Table {
            entries: BTreeMap::new(),
            sweep_at: FIRST_SWEEP,
            sweeps: 0,
        };
        let mut tokens = Vec::new();
        for ino in 0..(held + released) as u64 {
            let socket = StackSocket::new(stack, ino, libc::AF_INET, libc::SOCK_STREAM, 0);
            let (token, watch) = EndToken::new();
            if (ino as usize) < held {
                tokens.push(token);
            }
            let entry = Entry {
                socket: Arc::new(socket.expect("a socket")),
                watch,
                generation: 0,
                released_at: None,
            };
            table.entries.insert(ino, entry);
        }
        (table, tokens)
    }

    #[test]
    fn a_sweep_keeps_held_sockets_and_the_newest_released_ones() {
        let stack = Stack::new("", None).expect("a loopback stack");
        let (mut table, _held) = table(&stack, 10, MIN_RELEASED + 5);
        assert_eq!(table.sweep(None).len(), 5, "released beyond the minimum");
        assert_eq!(table.entries.len(), 10 + MIN_RELEASED);
        assert!((0..10).all(|ino| table.entries.contains_key(&ino)));
        assert_eq!(table.sweep_at, FIRST_SWEEP.max(2 * table.entries.len()));

        // Released at a later sweep: the ones released at the first go first.
        let (mut more, _) = self::table(&stack, 0, 3);
        for (ino, entry) in std::mem::take(&mut more.entries) {
            table.entries.insert(1_000_000 + ino, entry);
        }
        let forgotten = table.sweep(None);
        assert_eq!(forgotten.len(), 3);
        assert!((0..3).all(|ino| table.entries.contains_key(&(1_000_000 + ino))));
    }

    #[test]
    fn a_sweep_keeps_released_sockets_the_process_still_holds() {
        let stack = Stack::new("", None).expect("a loopback stack");
        let (mut table, _held) = table(&stack, 0, MIN_RELEASED + 10);
        // The oldest ones by inode: the first a sweep by age would forget.
        let open: HashSet<u64> = (0..5).collect();
        assert_eq!(table.sweep(Some(&open)).len(), 5, "five others go");
        assert!((0..5).all(|ino| table.entries.contains_key(&ino)));
        assert_eq!(table.entries.len(), 5 + MIN_RELEASED);
        drop(stack);
        assert_eq!(
            table.sweep(Some(&open)).len(),
            MIN_RELEASED,
            "a gone stack's sockets go, unless the process holds them"
        );
        assert_eq!(table.entries.len(), 5);
    }

    #[test]
    fn a_sweep_forgets_every_released_socket_of_a_stack_that_is_gone() {
        let stack = Stack::new("", None).expect("a loopback stack");
        let (mut table, held) = table(&stack, 2, 3);
        drop(stack);
        assert_eq!(table.sweep(None).len(), 3);
        assert_eq!(
            table.entries.len(),
            2,
            "held ones stay while their token is"
        );
        drop(held);
        assert_eq!(table.sweep(None).len(), 2);
    }
}
