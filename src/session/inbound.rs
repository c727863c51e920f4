//! The peer's requests this side is running: the table of running requests by number, the
//! concurrency cap, the callers' deadlines, and cancellation.
//!
//! `H` is whatever lets the caller stop a piece of running work (the connection actor's spawn
//! handle); this part only decides *which* work stops and when. A request number still running
//! may not be reused by the peer: two requests under one number would share one slot of the cap
//! and one cancellation. Nothing here performs I/O or reads the clock.

use std::time::Instant;

use crate::hash::SeqMap;

/// One running request.
struct Running<H> {
    handle: H,
    /// It waits for an event (a watch): a graceful close drops it rather than waiting for it.
    long_poll: bool,
    /// The caller's deadline: past it the work is dropped without a reply.
    deadline: Option<Instant>,
}

/// The peer's requests running on this side.
pub(crate) struct Inbound<H> {
    running: SeqMap<Running<H>>,
    /// One-way requests (no number, no reply) still running: they count against the cap.
    one_way: usize,
}

impl<H> Default for Inbound<H> {
    fn default() -> Self {
        Inbound { running: SeqMap::default(), one_way: 0 }
    }
}

/// The peer reused the number of a request still running.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SeqInUse(pub(crate) u64);

impl<H> Inbound<H> {
    /// Requests with a number running (one-way requests not counted).
    pub(crate) fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether no numbered request is running.
    pub(crate) fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Whether `max` requests, numbered or one-way, are running: the connection stops reading
    /// until one ends.
    pub(crate) fn is_full(&self, max: usize) -> bool {
        self.running.len() + self.one_way >= max
    }

    /// Refuses a number that a running request holds; checked before the request starts.
    pub(crate) fn check_free(&self, seq: u64) -> Result<(), SeqInUse> {
        if self.running.contains_key(&seq) {
            Err(SeqInUse(seq))
        } else {
            Ok(())
        }
    }

    /// Records running request `seq` (whose number [`check_free`](Inbound::check_free)
    /// accepted), stoppable through `handle`, with the caller's `deadline`.
    pub(crate) fn start(&mut self, seq: u64, handle: H, long_poll: bool, deadline: Option<Instant>) {
        self.running.insert(seq, Running { handle, long_poll, deadline });
    }

    /// Request `seq` finished: `true` if it was still running (its reply is due), `false` if it
    /// was cancelled or dropped meanwhile (no reply).
    pub(crate) fn finish(&mut self, seq: u64) -> bool {
        self.running.remove(&seq).is_some()
    }

    /// The peer cancelled request `seq`: the handle of its work, to stop it, if it runs.
    pub(crate) fn cancel(&mut self, seq: u64) -> Option<H> {
        self.running.remove(&seq).map(|r| r.handle)
    }

    /// A one-way request started running.
    pub(crate) fn start_one_way(&mut self) {
        self.one_way += 1;
    }

    /// A one-way request finished.
    pub(crate) fn finish_one_way(&mut self) {
        self.one_way = self.one_way.saturating_sub(1);
    }

    /// Takes out every request whose caller's deadline is at or before `now`, pushing the
    /// handles of their work (to stop, without a reply) to `expired`; returns the earliest
    /// deadline left.
    pub(crate) fn expire(&mut self, now: Instant, expired: &mut Vec<(u64, H)>) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut due = Vec::new();
        for (&seq, running) in &self.running {
            match running.deadline {
                Some(at) if at <= now => due.push(seq),
                Some(at) => earliest = Some(earliest.map_or(at, |e| e.min(at))),
                None => {}
            }
        }
        for seq in due {
            if let Some(running) = self.running.remove(&seq) {
                expired.push((seq, running.handle));
            }
        }
        earliest
    }

    /// Takes out the requests that wait for an event (a graceful close drops them).
    pub(crate) fn take_long_polls(&mut self) -> Vec<(u64, H)> {
        let seqs: Vec<u64> = self.running.iter().filter(|(_, r)| r.long_poll).map(|(&seq, _)| seq).collect();
        seqs.into_iter().filter_map(|seq| self.running.remove(&seq).map(|r| (seq, r.handle))).collect()
    }

    /// Takes out every running request (the connection ends, or the peer closed it and nobody
    /// waits for these replies any more).
    pub(crate) fn take_all(&mut self) -> Vec<H> {
        self.running.drain().map(|(_, r)| r.handle).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_number_still_running_is_refused_and_free_again_when_it_ends() {
        let mut inbound = Inbound::default();
        assert_eq!(inbound.check_free(7), Ok(()));
        inbound.start(7, "work", false, None);
        assert_eq!(inbound.check_free(7), Err(SeqInUse(7)));
        assert!(inbound.finish(7), "its reply is due");
        assert!(!inbound.finish(7), "a second end finds nothing");
        assert_eq!(inbound.check_free(7), Ok(()));
    }

    #[test]
    fn the_cap_counts_numbered_and_one_way_requests() {
        let mut inbound = Inbound::default();
        inbound.start(1, (), false, None);
        assert!(!inbound.is_full(2));
        inbound.start_one_way();
        assert!(inbound.is_full(2));
        inbound.finish_one_way();
        assert!(!inbound.is_full(2));
    }

    #[test]
    fn a_cancelled_request_gives_its_work_back_and_sends_no_reply() {
        let mut inbound = Inbound::default();
        inbound.start(3, "work of 3", false, None);
        assert_eq!(inbound.cancel(3), Some("work of 3"));
        assert!(!inbound.finish(3), "no reply for a cancelled request");
        assert_eq!(inbound.cancel(3), None);
    }

    #[test]
    fn requests_past_their_callers_deadline_are_dropped() {
        let mut inbound = Inbound::default();
        let now = Instant::now();
        inbound.start(1, 'a', false, Some(now + Duration::from_millis(10)));
        inbound.start(2, 'b', false, Some(now + Duration::from_secs(5)));
        inbound.start(3, 'c', false, None);
        let mut expired = Vec::new();
        let left = inbound.expire(now + Duration::from_millis(20), &mut expired);
        assert_eq!(expired, vec![(1, 'a')]);
        assert_eq!(left, Some(now + Duration::from_secs(5)));
        assert_eq!(inbound.len(), 2);
    }

    #[test]
    fn a_close_takes_the_long_polls_and_the_end_takes_everything() {
        let mut inbound = Inbound::default();
        inbound.start(1, 'w', true, None);
        inbound.start(2, 'x', false, None);
        assert_eq!(inbound.take_long_polls(), vec![(1, 'w')]);
        assert_eq!(inbound.take_all(), vec!['x']);
        assert!(inbound.is_empty());
    }
}
