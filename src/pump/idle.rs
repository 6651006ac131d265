//! How a pump waits for work: it polls for a short while after its last news
//! before it sleeps, and the application threads ring it only while it sleeps.
//!
//! Why poll at all: on a virtual machine, waking a thread whose CPU went idle is
//! the dearest thing a connection does. The idle vCPU halted, and the wake-up
//! is an inter-processor interrupt through the hypervisor: on the 2-vCPU machine
//! this was measured on, 40 to 70 us before the woken thread runs and about 18 us
//! of CPU, where a wake-up on a busy CPU costs 5 us. A connect, accept and close
//! passes from thread to thread (application, pump, switch, the other stack's
//! pump, and back) a dozen times, and each pass found its CPU idle: most of a
//! cycle was spent waking CPUs. A pump that polls (yielding its CPU to any thread
//! that wants it) keeps its CPU awake and its answer local for as long as the
//! exchange it is part of goes on: on that machine connection cycles ran 1.6 times
//! faster and request/response round trips took 0.6 times as long.
//!
//! How long: [`SpinWindow`] adapts as the kernel's haltpoll governor does. The
//! window grows while news keeps coming soon after the pump fell asleep (polling
//! longer would have caught it) and shrinks while the pump sleeps long (polling
//! would have been wasted), down to none: an idle stack, or one whose traffic comes
//! in bursts further apart than [`SpinWindow::MAX`], polls for nothing. A new
//! pump starts at the longest window ([`SpinWindow::at_birth`]): a stack is
//! configured and used as soon as it is made.
//!
//! Nor does a pump poll while its link carries bulk traffic (more than
//! [`SpinWindow::HEAVY_BYTES_PER_MS`]): news never stops coming then, and a pump
//! that polls takes each frame as it comes instead of a batch, and holds a CPU
//! the other threads of the transfer need (one-way throughput lost a tenth, and
//! took a third more CPU per byte, when it polled). It yields once instead,
//! after a step that wrote received bytes to an application: the reader that
//! woke then runs on its CPU while frames queue, and one look without sleeping
//! finds a batch (throughput bench, four alternated pairs of five runs: 214-235
//! MB/s before, 240-297 after, and 4.2-4.9 CPU s per GB without the switch's
//! before, 3.7-4.3 after).
//!
//! At most one thread per CPU polls at a time, process-wide ([`PollSlot`]): a
//! poller yields its CPU to any thread that wants it, but pollers yield to each
//! other too, and a process with many busy stacks would otherwise fill every CPU
//! with pumps taking turns at polling. A pump or call that finds no slot free
//! sleeps at once, as it did before.
//!
//! [`Doorbell`] is how controls wake the pump: an eventfd write is
//! needed only while the pump sleeps in its poll; while it runs or polls, it looks
//! at the control channel itself, and the application thread saves the write and
//! the pump the extra turn of its loop. It also tells the application threads
//! the pump's window, so that a call waiting for the pump's answer (a blocking
//! `connect`, `accept`) polls for as long before it sleeps
//! ([`Doorbell::wait_briefly`]): that keeps the application's CPU awake too.

use crate::sys;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

/// The threads of this process polling now (see [`PollSlot`]).
static POLLERS: AtomicUsize = AtomicUsize::new(0);

/// The right of one thread to poll, while it holds it: one per CPU the process
/// may run on.
#[derive(Debug)]
pub(super) struct PollSlot(&'static AtomicUsize);

impl PollSlot {
    /// A slot, if one is free.
    pub(super) fn take() -> Option<PollSlot> {
        PollSlot::take_from(&POLLERS, PollSlot::most())
    }

    /// A slot of `pollers`, if fewer than `most` are taken.
    fn take_from(pollers: &'static AtomicUsize, most: usize) -> Option<PollSlot> {
        pollers
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < most).then_some(n + 1)
            })
            .ok()
            .map(|_| PollSlot(pollers))
    }

    /// How many threads may poll at once: the CPUs this process may use.
    fn most() -> usize {
        static MOST: OnceLock<usize> = OnceLock::new();
        *MOST.get_or_init(|| {
            // A child forked while threads of the parent polled starts with
            // none polling: those threads are not in it.
            static FORKS: Once = Once::new();
            extern "C" fn nothing() {}
            extern "C" fn in_child() {
                POLLERS.store(0, Ordering::Relaxed);
            }
            FORKS.call_once(|| {
                let _ = sys::at_fork(nothing, nothing, in_child);
            });
            std::thread::available_parallelism().map_or(1, |n| n.get())
        })
    }
}

impl Drop for PollSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long a pump polls after news before it sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SpinWindow {
    window: Duration,
    /// The link carried bulk traffic in the last interval measured.
    heavy: bool,
    /// Bytes the link carried since `since`.
    bytes: usize,
    since: Duration,
}

impl SpinWindow {
    /// The longest window: about two round trips through a `vde_switch` on a
    /// virtual machine, and four wake-ups of an idle vCPU.
    pub(super) const MAX: Duration = Duration::from_micros(200);
    /// The shortest window that is not none; a window that shrinks below it is none.
    pub(super) const MIN: Duration = Duration::from_micros(10);

    /// Bytes per millisecond on the link (32 MB/s) from which its traffic is
    /// bulk: ten times what request/response traffic or connection cycles make at
    /// their fastest, a fifth of a bulk transfer's.
    pub(super) const HEAVY_BYTES_PER_MS: usize = 32 * 1024;
    /// How often the link's traffic is weighed.
    const INTERVAL: Duration = Duration::from_millis(1);

    /// A window that starts at none: it grows as the pump's exchanges show it
    /// would pay.
    pub(super) fn new() -> SpinWindow {
        SpinWindow {
            window: Duration::ZERO,
            heavy: false,
            bytes: 0,
            since: Duration::ZERO,
        }
    }

    /// A new pump's window: the longest.
    ///
    /// A stack is made to be used at once: configured, then connected. Its first
    /// exchanges with the application (the `vde_stackcmd` round trip, the first
    /// connect) come before it could have learnt that polling pays, and each
    /// would wake a halted CPU; a stack that then sits idle shrinks its window to
    /// none after a few sleeps, having polled for a fraction of a millisecond.
    pub(super) fn at_birth() -> SpinWindow {
        SpinWindow {
            window: SpinWindow::MAX,
            ..SpinWindow::new()
        }
    }

    /// The link carries bulk traffic (see [`SpinWindow::carried`]).
    pub(super) fn heavy(&self) -> bool {
        self.heavy
    }

    /// How long to poll after news: none while the link carries bulk traffic.
    pub(super) fn window(&self) -> Duration {
        if self.heavy {
            Duration::ZERO
        } else {
            self.window
        }
    }

    /// The link carried `bytes` (frames in or out) by `now`; true when that made
    /// the traffic turn bulk or stop being bulk.
    pub(super) fn carried(&mut self, now: Duration, bytes: usize) -> bool {
        self.bytes += bytes;
        let elapsed = now.saturating_sub(self.since);
        if elapsed < SpinWindow::INTERVAL {
            return false;
        }
        let per_ms = self.bytes as u128 * 1000 / elapsed.as_micros().max(1);
        let heavy = per_ms >= SpinWindow::HEAVY_BYTES_PER_MS as u128;
        self.bytes = 0;
        self.since = now;
        std::mem::replace(&mut self.heavy, heavy) != heavy
    }

    /// The pump polled for the whole window, then slept `slept` before news came
    /// (or its timer ran out).
    pub(super) fn slept(&mut self, slept: Duration) {
        if self.window + slept <= SpinWindow::MAX {
            // A longer window would have caught it.
            self.window = (self.window * 2).clamp(SpinWindow::MIN, SpinWindow::MAX);
        } else if slept > SpinWindow::MAX {
            self.window /= 2;
            if self.window < SpinWindow::MIN {
                self.window = Duration::ZERO;
            }
        }
    }
}

/// Asks `ready` until it says yes, yielding the CPU between tries, for at most
/// `window`; whether it said yes.
fn poll_for(window: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if ready() {
            return true;
        }
        if start.elapsed() >= window {
            return false;
        }
        std::thread::yield_now();
    }
}

/// Wakes a pump for a control, only if it sleeps; and tells how long the pump
/// polls before sleeping.
#[derive(Debug)]
pub(crate) struct Doorbell {
    /// An eventfd in the pump's poll (mio's `Waker` is one too, but does not
    /// tell its descriptor, which a stack must name: `Stack::descriptors`).
    waker: OwnedFd,
    /// Set by the pump just before it sleeps in its poll, cleared when it wakes or
    /// by the control that wakes it.
    asleep: AtomicBool,
    /// The pump's [`SpinWindow`], in microseconds.
    window_us: AtomicU32,
}

impl Doorbell {
    /// A doorbell that wakes the poll of `registry` with an event for `token`.
    /// Its window is none until the pump publishes its own.
    pub(crate) fn new(registry: &Registry, token: Token) -> io::Result<Doorbell> {
        let waker = sys::event_fd()?;
        registry.register(&mut SourceFd(&waker.as_raw_fd()), token, Interest::READABLE)?;
        Ok(Doorbell {
            waker,
            asleep: AtomicBool::new(false),
            window_us: AtomicU32::new(0),
        })
    }

    /// The descriptor the pump's poll watches for the doorbell.
    pub(crate) fn fd(&self) -> RawFd {
        self.waker.as_raw_fd()
    }

    /// Wakes the pump if it sleeps; called after a control was sent.
    pub(crate) fn ring(&self) -> io::Result<()> {
        // Pairs with the fence in `sleep_unless`: either the pump sees the
        // control sent before this, or this sees the pump asleep.
        fence(Ordering::SeqCst);
        if self.asleep.swap(false, Ordering::Relaxed) {
            sys::ring_event(self.waker.as_fd())?;
        }
        Ok(())
    }

    /// Marks the pump asleep, unless `pending()` (a control waits) once marked:
    /// then it must not sleep, and false is returned.
    pub(super) fn sleep_unless(&self, pending: impl FnOnce() -> bool) -> bool {
        self.asleep.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if pending() {
            self.asleep.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The pump woke (from any cause).
    pub(super) fn awake(&self) {
        self.asleep.store(false, Ordering::Relaxed);
    }

    /// Publishes the pump's window.
    pub(super) fn set_window(&self, spin: SpinWindow) {
        let us = spin.window().as_micros() as u32;
        self.window_us.store(us, Ordering::Relaxed);
    }

    /// Asks `ready` until it says yes, yielding the CPU between tries, for at
    /// most the pump's window (none if no [`PollSlot`] is free); whether it said
    /// yes. A thread about to sleep until the pump answers calls this first.
    pub(crate) fn wait_briefly(&self, ready: impl FnMut() -> bool) -> bool {
        let window = Duration::from_micros(self.window_us.load(Ordering::Relaxed).into());
        if window.is_zero() {
            return false;
        }
        let Some(_slot) = PollSlot::take() else {
            return false;
        };
        poll_for(window, ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    /// A window grown by three quick answers: 10, 20, then 40 us.
    fn warmed() -> SpinWindow {
        let mut spin = SpinWindow::new();
        for _ in 0..3 {
            spin.slept(US);
        }
        assert_eq!(spin.window(), 40 * US);
        spin
    }

    #[test]
    fn news_soon_after_sleeping_grows_the_window_to_the_most() {
        let mut spin = SpinWindow::new();
        assert_eq!(spin.window(), Duration::ZERO, "none until it pays");
        spin.slept(10 * US);
        assert_eq!(spin.window(), SpinWindow::MIN);
        spin.slept(10 * US);
        assert_eq!(spin.window(), SpinWindow::MIN * 2);
        for _ in 0..10 {
            spin.slept(US);
        }
        assert_eq!(spin.window(), SpinWindow::MAX);
    }

    #[test]
    fn long_sleeps_shrink_it_to_none_and_news_brings_it_back() {
        let mut spin = warmed();
        for _ in 0..10 {
            spin.slept(Duration::from_millis(5));
        }
        assert_eq!(
            spin.window(),
            Duration::ZERO,
            "an idle pump polls for nothing"
        );
        spin.slept(50 * US);
        assert_eq!(spin.window(), SpinWindow::MIN);
    }

    #[test]
    fn a_new_pump_polls_at_once_and_an_idle_one_soon_stops() {
        let mut spin = SpinWindow::at_birth();
        assert_eq!(spin.window(), SpinWindow::MAX);
        for _ in 0..5 {
            spin.slept(Duration::from_secs(1));
        }
        assert_eq!(spin.window(), Duration::ZERO);
    }

    #[test]
    fn news_just_beyond_reach_changes_nothing() {
        // Between the two rules: a longer window would not have caught it, a
        // shorter one would have lost what it caught before.
        let mut spin = warmed();
        let start = spin.window();
        spin.slept(SpinWindow::MAX - start / 2);
        assert_eq!(spin.window(), start);
    }

    #[test]
    fn bulk_traffic_stops_the_polling_until_it_ends() {
        let mut spin = warmed();
        let ms = Duration::from_millis(1);
        let start = spin.window();
        // Request/response traffic: a few hundred bytes per millisecond.
        assert!(!spin.carried(ms, 400));
        assert_eq!(spin.window(), start);
        // Bulk: 1,500-byte frames, a hundred per millisecond.
        for i in 0..100 {
            assert!(!spin.carried(ms + ms * i / 100, 1500));
        }
        assert!(spin.carried(2 * ms, 1500), "turned bulk");
        assert_eq!(spin.window(), Duration::ZERO);
        assert!(
            !spin.carried(2 * ms + ms / 2, 0),
            "weighed once a millisecond"
        );
        assert!(spin.carried(3 * ms, 0), "quiet again");
        assert_eq!(spin.window(), start);
    }

    #[test]
    fn a_doorbell_rings_only_a_sleeping_pump() {
        let mut poll = mio::Poll::new().unwrap();
        let bell = Doorbell::new(poll.registry(), mio::Token(0)).unwrap();
        bell.ring().unwrap();
        assert!(!bell.asleep.load(Ordering::Relaxed));
        assert!(!bell.sleep_unless(|| true), "a waiting control keeps it up");
        assert!(!bell.asleep.load(Ordering::Relaxed));
        assert!(bell.sleep_unless(|| false));
        bell.ring().unwrap();
        assert!(!bell.asleep.load(Ordering::Relaxed), "rung once");
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert_eq!(events.iter().count(), 1, "the waker's event");
    }

    #[test]
    fn no_more_threads_poll_than_there_are_slots() {
        static POLLING: AtomicUsize = AtomicUsize::new(0);
        let first = PollSlot::take_from(&POLLING, 2).expect("free");
        let second = PollSlot::take_from(&POLLING, 2).expect("free");
        assert!(PollSlot::take_from(&POLLING, 2).is_none(), "all taken");
        drop(first);
        let third = PollSlot::take_from(&POLLING, 2).expect("given back");
        drop((second, third));
        assert_eq!(POLLING.load(Ordering::Relaxed), 0);
        assert!(PollSlot::most() >= 1);
    }

    #[test]
    fn a_brief_wait_lasts_the_window_at_most() {
        let mut tries = 0;
        assert!(poll_for(Duration::from_secs(10), || {
            tries += 1;
            tries == 3
        }));
        let start = Instant::now();
        assert!(!poll_for(40 * US, || false), "the window runs out");
        assert!(start.elapsed() >= 40 * US);

        // The pump's window is none: not even one try.
        let poll = mio::Poll::new().unwrap();
        let bell = Doorbell::new(poll.registry(), mio::Token(0)).unwrap();
        let mut asked = false;
        assert!(!bell.wait_briefly(|| {
            asked = true;
            true
        }));
        assert!(!asked);
    }
}
