//! Alarms: wake-ups at a deadline, kept by one thread for the whole process, for deadlines
//! that nearly never come due — request expiries (30 s by default; replies come in
//! microseconds) and the peer's `Hello` (10 s by default; it comes with the first bytes).
//!
//! A tokio timer costs its runtime on every park while it is registered: a scan of the timer
//! wheel and clock reads, twice per round trip for a connection waiting on replies (measured:
//! ~700 instructions per synchronous call, 7 % of the calling side). An alarm costs its
//! connection a lock and a heap push when armed (once per expiry period, since a connection
//! arms only for an earlier deadline than the one armed) and an atomic load per turn; when it
//! comes due, the thread wakes the connection's task from outside, which costs a cross-thread
//! wake-up once per expiry period.
//!
//! The thread starts with the first alarm armed and lives as long as the process; it holds
//! only weak references, so a connection that stops drops its alarms. If the thread cannot be
//! started, [`Alarm::set`] says so and the caller keeps its own timer.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Condvar, Mutex, OnceLock, Weak,
    },
    task::Waker,
    time::Instant,
};

/// One connection's alarm: it can be armed for several deadlines (each one fires), and its
/// task is woken when one comes due.
#[derive(Default)]
pub(crate) struct Alarm {
    shared: Arc<AlarmState>,
}

#[derive(Default)]
struct AlarmState {
    fired: AtomicBool,
    /// Kept, not taken, when woken: the connection registers it once, not after each fire.
    waker: Mutex<Option<Waker>>,
}

impl Alarm {
    /// Wakes `waker` (the connection's task) when a deadline comes due. The last waker
    /// registered is the one woken.
    pub(crate) fn register(&self, waker: &Waker) {
        *self.shared.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(waker.clone());
    }

    /// Arms the alarm for `at` (deadlines armed before stay armed). `false` if the alarm
    /// thread is not running and cannot be started.
    pub(crate) fn set(&self, at: Instant) -> bool {
        match clock() {
            Some(clock) => {
                clock.push(at, Arc::downgrade(&self.shared));
                true
            }
            None => false,
        }
    }

    /// Whether a deadline came due since the last call.
    pub(crate) fn take_fired(&self) -> bool {
        self.shared.fired.load(Ordering::Acquire) && self.shared.fired.swap(false, Ordering::AcqRel)
    }
}

impl std::fmt::Debug for Alarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alarm").field("fired", &self.shared.fired.load(Ordering::Relaxed)).finish()
    }
}

/// The armed deadlines of every alarm, earliest first, and the thread that waits for them.
struct Clock {
    queue: Mutex<Queue>,
    changed: Condvar,
}

/// Deadlines stay queued until they come due, also those of connections gone meanwhile (a
/// heap cannot drop an entry from its middle): when the queue reaches `purge_at` entries,
/// those of dropped alarms are removed, so it holds at most about twice the live ones.
struct Queue {
    heap: BinaryHeap<Entry>,
    purge_at: usize,
}

/// Entries below which the queue is never purged.
const PURGE_MIN: usize = 4096;

struct Entry {
    at: Reverse<Instant>,
    alarm: Weak<AlarmState>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

/// The process's clock, started on first use; `None` if its thread could not be started.
fn clock() -> Option<&'static Clock> {
    static CLOCK: OnceLock<Option<&'static Clock>> = OnceLock::new();
    *CLOCK.get_or_init(|| {
        let clock: &'static Clock = Box::leak(Box::new(Clock {
            queue: Mutex::new(Queue { heap: BinaryHeap::new(), purge_at: PURGE_MIN }),
            changed: Condvar::new(),
        }));
        match std::thread::Builder::new().name("netref-alarm".into()).spawn(move || clock.run()) {
            Ok(_) => Some(clock),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the alarm thread; connections use runtime timers");
                None
            }
        }
    })
}

impl Clock {
    fn push(&self, at: Instant, alarm: Weak<AlarmState>) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.heap.len() >= queue.purge_at {
            queue.heap.retain(|e| e.alarm.strong_count() > 0);
            queue.purge_at = (queue.heap.len() * 2).max(PURGE_MIN);
        }
        let earliest = queue.heap.peek().is_none_or(|e| at < e.at.0);
        queue.heap.push(Entry { at: Reverse(at), alarm });
        drop(queue);
        if earliest {
            self.changed.notify_one();
        }
    }

    fn run(&self) {
        let mut due = Vec::new();
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let now = Instant::now();
            while queue.heap.peek().is_some_and(|e| e.at.0 <= now) {
                if let Some(entry) = queue.heap.pop() {
                    due.push(entry.alarm);
                }
            }
            if !due.is_empty() {
                // Wake outside the lock: a waker may take locks of its own.
                drop(queue);
                for alarm in due.drain(..).filter_map(|a| a.upgrade()) {
                    alarm.fired.store(true, Ordering::Release);
                    let waker = alarm.waker.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                }
                queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                continue;
            }
            queue = match queue.heap.peek().map(|e| e.at.0) {
                None => self.changed.wait(queue).unwrap_or_else(|p| p.into_inner()),
                Some(at) => {
                    self.changed
                        .wait_timeout(queue, at.saturating_duration_since(now))
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::AtomicUsize,
        task::{Wake, Waker},
        time::Duration,
    };

    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::yield_now();
        }
    }

    #[test]
    fn deadlines_fire_in_order_and_wake_the_registered_task() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let alarm = Alarm::default();
        alarm.register(&Waker::from(count.clone()));
        assert!(!alarm.take_fired());
        let now = Instant::now();
        // A far deadline does not hold back an earlier one armed after it.
        assert!(alarm.set(now + Duration::from_secs(3600)));
        assert!(alarm.set(now + Duration::from_millis(20)));
        wait_for("the first wake", || count.0.load(Ordering::SeqCst) == 1);
        assert!(Instant::now() >= now + Duration::from_millis(20), "not before its deadline");
        assert!(alarm.take_fired());
        assert!(!alarm.take_fired(), "taken once");
        // A deadline already past fires at once.
        assert!(alarm.set(now));
        wait_for("the second wake", || count.0.load(Ordering::SeqCst) == 2);
        assert!(alarm.take_fired());
    }

    #[test]
    fn deadlines_of_dropped_alarms_do_not_pile_up() {
        let clock = clock().expect("the alarm thread");
        let far = Instant::now() + Duration::from_secs(3600);
        // Many short-lived connections, each arming a far deadline and going away.
        for _ in 0..5 * PURGE_MIN {
            let alarm = Alarm::default();
            assert!(alarm.set(far));
        }
        let len = clock.queue.lock().unwrap().heap.len();
        assert!(len < 3 * PURGE_MIN, "{len} deadlines queued for {} alarms, all dropped", 5 * PURGE_MIN);
    }

    #[test]
    fn a_dropped_alarm_is_forgotten() {
        let alarm = Alarm::default();
        let weak = Arc::downgrade(&alarm.shared);
        assert!(alarm.set(Instant::now() + Duration::from_millis(5)));
        drop(alarm);
        assert!(weak.upgrade().is_none(), "the clock holds no strong reference");
        // The entry comes due and is dropped; a later alarm still fires.
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let other = Alarm::default();
        other.register(&Waker::from(count.clone()));
        assert!(other.set(Instant::now() + Duration::from_millis(10)));
        wait_for("the other alarm", || count.0.load(Ordering::SeqCst) == 1);
    }
}
