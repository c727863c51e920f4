//! CPU time of the client and of a server process over a timed loop, per round trip: which
//! side a round trip's time goes to, and how much more than the floor each side spends.
//!
//! Both are the scheduler's on-CPU time (user space and kernel together, in nanoseconds): for
//! this process its CPU-time clock (`CLOCK_PROCESS_CPUTIME_ID`, which keeps the time of
//! threads that have ended), for a server process the sum over its threads of
//! `/proc/PID/task/*/schedstat` (a server's threads live as long as it does). Linux only;
//! elsewhere nothing is measured and the figures are left out.

use std::fs;

/// The on-CPU time a process has used so far, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct CpuSample(u64);

impl CpuSample {
    /// This process's sample now (all its threads, ended ones included).
    #[cfg(target_os = "linux")]
    pub(crate) fn own() -> Option<Self> {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        Some(CpuSample(u64::try_from(t.tv_sec).ok()? * 1_000_000_000 + u64::try_from(t.tv_nsec).ok()?))
    }

    /// Not measured outside Linux.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn own() -> Option<Self> {
        None
    }

    /// The sample of the server process `pid` now (its live threads), or `None` where procfs
    /// cannot tell.
    pub(crate) fn of(pid: u32) -> Option<Self> {
        let mut ns = 0;
        for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
            // A thread that ended between the listing and the read is skipped.
            if let Ok(s) = fs::read_to_string(task.ok()?.path().join("schedstat")) {
                ns += parse_schedstat(&s)?;
            }
        }
        Some(CpuSample(ns))
    }

    /// Microseconds per round trip between `self` (before) and `after`, over `ops` round
    /// trips; `None` if the time went backwards (a server thread ended in between).
    pub(crate) fn per_op_us(&self, after: &CpuSample, ops: usize) -> Option<f64> {
        let ns = after.0.checked_sub(self.0)?;
        (ops > 0).then(|| ns as f64 / 1e3 / ops as f64)
    }
}

/// The on-CPU nanoseconds of a `schedstat` line (its first field; then the wait time and the
/// number of time slices).
fn parse_schedstat(line: &str) -> Option<u64> {
    line.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_gives_the_on_cpu_time() {
        assert_eq!(parse_schedstat("1020985 40 1\n"), Some(1_020_985));
        assert_eq!(parse_schedstat(""), None);
        assert_eq!(parse_schedstat("x 1 2"), None);
    }

    #[test]
    fn per_op_divides_the_difference() {
        let (before, after) = (CpuSample(1_000_000), CpuSample(41_000_000));
        assert_eq!(before.per_op_us(&after, 1000), Some(40.0));
        assert_eq!(before.per_op_us(&after, 0), None);
        assert_eq!(after.per_op_us(&before, 1000), None, "time does not run backwards");
    }

    #[test]
    fn this_process_is_sampled_and_its_time_grows() {
        if !cfg!(target_os = "linux") {
            return;
        }
        // Through procfs, as a server is (other test threads may come and go meanwhile).
        assert!(CpuSample::of(std::process::id()).expect("procfs").0 > 0);
        // Through the process's CPU-time clock: it grows with work done, whatever other
        // threads do.
        let before = CpuSample::own().expect("a CPU-time clock");
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut x = 0u64;
        while CpuSample::own().expect("a CPU-time clock") == before && std::time::Instant::now() < give_up {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = CpuSample::own().expect("a CPU-time clock");
        assert!(before.per_op_us(&after, 1).is_some_and(|us| us > 0.0), "{before:?} -> {after:?}");
    }
}
