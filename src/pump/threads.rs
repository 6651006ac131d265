//! The threads pumps run on, kept for the next stack for a while.
//!
//! Starting a thread and joining it cost 40 to 60 us on the 2-vCPU machine the
//! benches run on (`clone`, the new stack's guard page and first faults, then
//! `munmap` of that stack at the join, whose TLB flush interrupts every CPU
//! running the process): a third of what making, configuring and deleting a
//! stack costs above `vde_open` + `vde_close` themselves. Programs that make stacks
//! one after another (test suites, simulations) pay it each time. So a pump that
//! ends leaves its thread waiting a few seconds for the next pump, and a new stack
//! takes such a thread when one waits.
//!
//! Deleting a stack still returns only once its pump is gone and every descriptor
//! it held is closed: [`PumpThread::finish`] waits for the thread to report the
//! pump dropped, as a join did. A forked child has none of its parent's threads:
//! the pool belongs to the process that made it, and a child starts its own.

use super::{Doorbell, Pump};
use crate::link::Link;
use crate::sys;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::ffi::CString;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a thread whose pump ended waits for the next one before it exits.
const LINGER: Duration = Duration::from_secs(5);

/// Threads waiting for a pump at most; one more pump that ends lets its thread go.
const MAX_WAITING: usize = 4;

/// A pump to run, its thread's name, and where to say it is gone.
struct Job {
    pump: Box<Pump>,
    name: CString,
    done: Sender<Box<dyn Link>>,
}

/// The waiting threads of one process: a channel they all take jobs from, and
/// how many are committed to take one.
struct Pool {
    pid: u32,
    jobs: Sender<Job>,
    queue: Receiver<Job>,
    /// Threads waiting and not yet claimed by a stack. A stack claims one by
    /// taking it down by one, then sends; a thread whose wait ran out leaves
    /// only if it can take it down itself, otherwise a job is on its way to it.
    waiting: Arc<AtomicUsize>,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

/// A running pump's thread, as its stack holds it.
#[derive(Debug)]
pub(crate) struct PumpThread {
    done: Receiver<Box<dyn Link>>,
}

impl PumpThread {
    /// Runs `pump` on a waiting thread, or on a new one, named `name`.
    pub(crate) fn start(pump: Box<Pump>, name: String) -> io::Result<PumpThread> {
        let (done, finished) = crossbeam_channel::bounded(1);
        let name = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut job = Job { pump, name, done };
        // A lock held across a fork (another thread of the parent making a stack)
        // would never be released in the child: that child's new thread then
        // serves its one pump and exits.
        let mut pool_of_new_thread = None;
        if let Ok(mut slot) = POOL.try_lock() {
            let pool = slot.get_or_insert_with(Pool::new);
            if pool.pid != sys::process_id() {
                // A forked child's copy, whose threads are the parent's. Not
                // dropped: its channel's insides are as the fork found them.
                std::mem::forget(std::mem::replace(pool, Pool::new()));
            }
            if claim(&pool.waiting) {
                match pool.jobs.send(job) {
                    Ok(()) => return Ok(PumpThread { done: finished }),
                    Err(returned) => job = returned.0,
                }
            }
            pool_of_new_thread = Some((pool.queue.clone(), pool.waiting.clone()));
        }
        std::thread::Builder::new()
            .name("vdestack-pump".to_owned())
            .spawn(move || serve(job, pool_of_new_thread))?;
        Ok(PumpThread { done: finished })
    }

    /// Waits until the pump is dropped, its descriptors closed. The caller has
    /// asked it to stop; the pump never blocks on the application, so this
    /// returns promptly: first polling for as long as the pump polls before it
    /// sleeps (`doorbell`), as a request's answer is waited for, since waking
    /// this thread from sleep would cost more than the pump's whole teardown.
    pub(crate) fn finish(self, doorbell: &Doorbell) {
        let mut link = None;
        doorbell.wait_briefly(|| {
            link = self.done.try_recv().ok();
            link.is_some()
        });
        // An error means the thread is gone without a word: nothing to wait for.
        drop(link.or_else(|| self.done.recv().ok()));
    }
}

impl Pool {
    fn new() -> Pool {
        let (jobs, queue) = crossbeam_channel::unbounded();
        Pool {
            pid: sys::process_id(),
            jobs,
            queue,
            waiting: Arc::default(),
        }
    }
}

/// Takes one waiting thread for a job, if there is one.
fn claim(waiting: &AtomicUsize) -> bool {
    waiting
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

/// A pump thread's life: the first job, then others from the pool while they
/// come within [`LINGER`] and fewer than [`MAX_WAITING`] threads wait.
fn serve(first: Job, pool: Option<(Receiver<Job>, Arc<AtomicUsize>)>) {
    let mut job = first;
    loop {
        let Job { pump, name, done } = job;
        let _ = sys::set_thread_name(&name);
        let link = pump.run();
        // The pump is dropped (its descriptors closed) before its stack hears of
        // it. The link is closed by the stack's thread: `vde_close` unmaps the
        // plugin's library, and an unmapping here would interrupt that thread's
        // CPU, which polls for this answer (a TLB shootdown: tens of us on a VM).
        let _ = done.send(link);
        let Some((queue, waiting)) = &pool else {
            return;
        };
        if waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_WAITING).then_some(n + 1)
            })
            .is_err()
        {
            return;
        }
        let _ = sys::set_thread_name(c"vdestack-idle");
        job = match queue.recv_timeout(LINGER) {
            Ok(next) => next,
            Err(RecvTimeoutError::Timeout) if claim(waiting) => return,
            // A stack claimed this thread as its wait ran out: its job is coming.
            Err(RecvTimeoutError::Timeout) => match queue.recv() {
                Ok(next) => next,
                Err(_) => return,
            },
            Err(RecvTimeoutError::Disconnected) => return,
        };
    }
}
