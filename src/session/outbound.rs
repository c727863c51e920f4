//! This side's requests: their numbers, the replies awaited (`pending`), the requests waiting
//! for an in-flight slot (`backlog`), and their expiry.
//!
//! A request's expiry is its [`AsyncResult`](crate::AsyncResult)'s, counted from the call, and
//! it holds wherever the request is: awaited or still queued. Expiring a queued request sends
//! nothing (the peer never saw it); expiring an awaited one tells the caller which numbers to
//! cancel. Nothing here performs I/O or reads the clock.

use std::{collections::VecDeque, sync::Arc, time::Instant};

use crate::{
    async_result::{Completer, Shared},
    hash::SeqMap,
    link::Submit,
    Error,
};

/// This side's requests, sent and not yet sent.
#[derive(Default)]
pub(crate) struct Outbound {
    next_seq: u64,
    /// Sent requests awaiting their reply, by number.
    pending: SeqMap<Completer>,
    /// Requests waiting for an in-flight slot, oldest first.
    backlog: VecDeque<Submit>,
}

impl Outbound {
    /// The next request number (each side numbers its own requests from 0).
    pub(crate) fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Requests sent and awaiting a reply.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Requests waiting for an in-flight slot.
    pub(crate) fn queued(&self) -> usize {
        self.backlog.len()
    }

    /// Whether request `seq` awaits its reply.
    pub(crate) fn awaits(&self, seq: u64) -> bool {
        self.pending.contains_key(&seq)
    }

    /// Requests awaiting a reply that have an expiry.
    pub(crate) fn scheduled_expiries(&self) -> usize {
        self.pending.values().filter(|c| c.shared.expiry().is_some()).count()
    }

    /// Records that request `seq` was sent and its reply settles `completer`.
    pub(crate) fn sent(&mut self, seq: u64, completer: Completer) {
        self.pending.insert(seq, completer);
    }

    /// The completer of request `seq`, taken out: its reply arrived, or it was cancelled.
    /// `None` for a number not awaited (expired or cancelled before; a late reply).
    pub(crate) fn take(&mut self, seq: u64) -> Option<Completer> {
        self.pending.remove(&seq)
    }

    /// Queues `msg` behind the in-flight cap; hands it back when `max_queued` are queued.
    pub(crate) fn queue(&mut self, msg: Submit, max_queued: usize) -> Result<(), Submit> {
        if self.backlog.len() >= max_queued {
            return Err(msg);
        }
        self.backlog.push_back(msg);
        Ok(())
    }

    /// Whether requests are waiting for an in-flight slot.
    pub(crate) fn has_queued(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// The oldest queued request, taken out to be sent.
    pub(crate) fn next_queued(&mut self) -> Option<Submit> {
        self.backlog.pop_front()
    }

    /// Forgets the queued request whose result is `shared` (its caller dropped it).
    pub(crate) fn forget_queued(&mut self, shared: &Arc<Shared>) {
        self.backlog.retain(|m| !Arc::ptr_eq(&m.completer.shared, shared));
    }

    /// Settles every request, awaited or queued, whose expiry is at or before `now` with
    /// [`Error::Timeout`]; the awaited ones' numbers are pushed to `cancelled` (the peer should
    /// be told to drop the work), the queued ones leave without a trace. Returns the earliest
    /// expiry left. Looks at each request once.
    pub(crate) fn expire(&mut self, now: Instant, cancelled: &mut Vec<u64>) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut note = |at: Instant| earliest = Some(earliest.map_or(at, |e: Instant| e.min(at)));
        let first = cancelled.len();
        for (&seq, completer) in &self.pending {
            // The result's own expiry is the truth (`set_expiry` may have moved it).
            match completer.shared.expiry() {
                Some(at) if at <= now => cancelled.push(seq),
                Some(at) => note(at),
                None => {}
            }
        }
        for seq in &cancelled[first..] {
            if let Some(completer) = self.pending.remove(seq) {
                let timeout = completer.shared.timeout();
                completer.settle(Err(Error::Timeout(timeout)));
            }
        }
        if !self.backlog.is_empty() {
            let mut kept = VecDeque::with_capacity(self.backlog.len());
            for msg in self.backlog.drain(..) {
                match msg.completer.shared.expiry() {
                    Some(at) if at <= now => {
                        let timeout = msg.completer.shared.timeout();
                        msg.completer.settle(Err(Error::Timeout(timeout)));
                    }
                    Some(at) => {
                        note(at);
                        kept.push_back(msg);
                    }
                    None => kept.push_back(msg),
                }
            }
            self.backlog = kept;
        }
        earliest
    }

    /// Fails every request, awaited and queued, with `error`.
    pub(crate) fn fail_all(&mut self, error: &Error) -> usize {
        for (_, completer) in self.pending.drain() {
            completer.settle(Err(error.clone()));
        }
        self.fail_queued(error)
    }

    /// Fails the queued requests with `error` (the awaited ones still get their replies).
    /// Returns how many of them were one-way calls (nobody hears of their failure but the log).
    pub(crate) fn fail_queued(&mut self, error: &Error) -> usize {
        let mut one_way = 0;
        for msg in self.backlog.drain(..) {
            one_way += usize::from(msg.one_way.is_some());
            msg.completer.settle(Err(error.clone()));
        }
        one_way
    }

    /// Whether nothing is awaited.
    pub(crate) fn nothing_awaited(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether nothing is awaited or queued.
    pub(crate) fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.backlog.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{link::Payload, AsyncResult, Handle, Value};

    fn request(timeout: Option<Duration>) -> (AsyncResult<Value>, Submit) {
        let (result, completer) = AsyncResult::pending(timeout);
        let msg = Submit { handle: Handle::Ping, args: Payload::Value(Value::None), completer, one_way: None };
        (result, msg)
    }

    #[test]
    fn requests_are_numbered_from_zero_in_order() {
        let mut out = Outbound::default();
        assert_eq!((out.next_seq(), out.next_seq(), out.next_seq()), (0, 1, 2));
    }

    #[test]
    fn a_queued_request_expires_on_its_own_expiry_and_sends_nothing() {
        let mut out = Outbound::default();
        let (awaited, first) = request(Some(Duration::from_secs(3)));
        let seq = out.next_seq();
        out.sent(seq, first.completer);
        let (queued, second) = request(Some(Duration::from_millis(150)));
        assert!(out.queue(second, 16).is_ok());
        let start = Instant::now();

        let mut cancelled = Vec::new();
        let earliest = out.expire(start + Duration::from_millis(100), &mut cancelled);
        assert!(cancelled.is_empty() && !queued.expired());
        assert!(
            earliest.is_some_and(|at| at <= start + Duration::from_millis(150)),
            "the queued expiry is the earliest"
        );

        let earliest = out.expire(start + Duration::from_millis(200), &mut cancelled);
        assert!(queued.expired(), "the queued request timed out at its own expiry");
        assert!(cancelled.is_empty(), "nothing to cancel: it was never sent");
        assert_eq!(out.queued(), 0);
        assert!(!awaited.expired() && out.awaits(seq));
        assert!(earliest.is_some_and(|at| at > start + Duration::from_secs(2)), "the awaited request's expiry is left");
    }

    #[test]
    fn an_awaited_request_expires_and_is_named_for_cancelling() {
        let mut out = Outbound::default();
        let (result, msg) = request(Some(Duration::from_millis(50)));
        let seq = out.next_seq();
        out.sent(seq, msg.completer);
        let mut cancelled = Vec::new();
        let left = out.expire(Instant::now() + Duration::from_secs(1), &mut cancelled);
        assert_eq!(cancelled, vec![seq]);
        assert!(left.is_none() && out.is_idle());
        assert!(result.expired());
        assert!(out.take(seq).is_none(), "a late reply finds nothing");
    }

    #[test]
    fn the_backlog_is_capped_and_keeps_its_order() {
        let mut out = Outbound::default();
        let (_a, a) = request(None);
        let (_b, b) = request(None);
        let (_c, c) = request(None);
        assert!(out.queue(a, 2).is_ok());
        assert!(out.queue(b, 2).is_ok());
        let refused = out.queue(c, 2);
        assert!(refused.is_err(), "the third is refused past the cap");
        let first = out.next_queued().unwrap();
        assert_eq!(first.handle, Handle::Ping);
        assert_eq!(out.queued(), 1);
    }

    #[test]
    fn failing_all_settles_awaited_and_queued_requests() {
        let mut out = Outbound::default();
        let (awaited, a) = request(None);
        let seq = out.next_seq();
        out.sent(seq, a.completer);
        let (queued, b) = request(None);
        assert!(out.queue(b, 8).is_ok());
        let _ = out.fail_all(&Error::ConnectionClosed("gone".into()));
        assert!(awaited.error() && queued.error());
        assert!(out.is_idle());
    }

    #[test]
    fn a_forgotten_queued_request_leaves_the_backlog() {
        let mut out = Outbound::default();
        let (result, msg) = request(None);
        let shared = msg.completer.shared.clone();
        assert!(out.queue(msg, 8).is_ok());
        out.forget_queued(&shared);
        assert_eq!(out.queued(), 0);
        drop(result);
    }
}
