//! Liveness: when a silent peer is declared lost, and what this side sends so that the peer
//! hears from it — decided at each tick (every third of `peer_timeout`) from what happened
//! since the last one.
//!
//! The peer counts as heard up to the start of the last interval in which anything was read,
//! so it is declared lost after at most `peer_timeout` of real silence (and at least two
//! intervals). While this side's reading was stopped for back-pressure, silence says nothing
//! about the peer: it counts as heard. Nothing here performs I/O or reads the clock.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tracing::debug;

use super::{Host, Session};
use crate::{async_result::ResultOwner, Error, Frame, Handle, Value};

/// What a tick asks of the connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Tick {
    /// The peer has been silent for `silent`, at least the timeout: the connection is lost.
    Lost { silent: Duration },
    /// Nothing was heard this interval: send a PING request, which the peer answers whatever
    /// its own settings.
    Ping,
    /// Something was heard but nothing was sent: send a one-way PING so the peer hears from
    /// this side.
    Notify,
    /// Nothing to do.
    Quiet,
}

/// The liveness state of one connection.
#[derive(Debug)]
pub(crate) struct Liveness {
    timeout: Duration,
    /// When the peer was last known to be alive, at the granularity of ticks.
    last_heard: Instant,
    heard: bool,
    sent: bool,
    reading_paused: bool,
}

impl Liveness {
    /// Liveness with `timeout`, counting from `now` (the connection's start).
    pub(crate) fn new(timeout: Duration, now: Instant) -> Self {
        Liveness { timeout, last_heard: now, heard: false, sent: false, reading_paused: false }
    }

    /// The time between ticks: a third of the timeout.
    pub(crate) fn interval(&self) -> Duration {
        (self.timeout / 3).max(Duration::from_millis(1))
    }

    /// Something was read from the peer.
    #[inline]
    pub(crate) fn heard(&mut self) {
        self.heard = true;
    }

    /// A frame other than a liveness frame was queued for the peer.
    #[inline]
    pub(crate) fn sent(&mut self) {
        self.sent = true;
    }

    /// Reading stopped for back-pressure (or is stopped now).
    #[inline]
    pub(crate) fn reading_paused(&mut self) {
        self.reading_paused = true;
    }

    /// Forgets that the liveness frame a tick asked for was sent: it does not count as
    /// traffic, so the next interval sends its own unless something else goes out, and the
    /// peer hears from this side at least once an interval.
    pub(crate) fn tick_sent_nothing(&mut self) {
        self.sent = false;
    }

    /// The tick at `now`: whether the peer is lost, and what to send (call
    /// [`tick_sent_nothing`](Liveness::tick_sent_nothing) once it is sent).
    pub(crate) fn tick(&mut self, now: Instant) -> Tick {
        let heard = std::mem::take(&mut self.heard) | std::mem::take(&mut self.reading_paused);
        let sent = std::mem::take(&mut self.sent);
        if heard {
            let start_of_interval = now.checked_sub(self.interval()).unwrap_or(now);
            self.last_heard = start_of_interval.max(self.last_heard);
        }
        let silent = now.saturating_duration_since(self.last_heard);
        if silent >= self.timeout {
            Tick::Lost { silent }
        } else if !heard {
            Tick::Ping
        } else if !sent {
            Tick::Notify
        } else {
            Tick::Quiet
        }
    }
}

impl<W> Session<W> {
    /// Arms the next liveness tick, a third of `peer_timeout` from `now`; without a
    /// `peer_timeout` there are no ticks.
    pub(super) fn schedule_tick(&mut self, now: Instant, host: &mut impl Host<Work = W>) {
        let Some(interval) = self.liveness.as_ref().map(Liveness::interval) else { return };
        let due = now + interval;
        self.tick_due = Some(due);
        host.wake_at(due);
    }

    /// One liveness tick (see [`Liveness::tick`]): a silent peer is lost; otherwise a PING
    /// request or a one-way PING goes out directly, outside the in-flight caps and the backlog.
    pub(super) fn tick(&mut self, now: Instant, host: &mut impl Host<Work = W>) {
        self.tick_due = None;
        if !self.life.is_open() {
            return;
        }
        let reading_paused = std::mem::take(&mut self.reads_were_paused) || self.reads_paused();
        let Some(live) = &mut self.liveness else { return };
        if reading_paused {
            live.reading_paused();
        }
        let timeout = self.config.peer_timeout.unwrap_or_default();
        match live.tick(now) {
            Tick::Lost { silent } => {
                let error = Error::ConnectionClosed(format!(
                    "peer lost: nothing received for {silent:?} (peer_timeout {timeout:?})"
                ));
                return self.fail(error, host);
            }
            Tick::Ping => self.send_liveness_ping(timeout, host),
            Tick::Notify => {
                let frame = Frame::Notify { handle: Handle::Ping, args: Value::Tuple(Vec::new()) };
                if let Err(e) = self.queue_frame(&frame) {
                    debug!(parent: &self.span, error = %e, "cannot send a liveness frame");
                }
            }
            Tick::Quiet => {}
        }
        // The liveness frame just queued does not count as traffic (see `Liveness::tick`).
        if let Some(live) = &mut self.liveness {
            live.tick_sent_nothing();
        }
        self.schedule_tick(now, host);
    }

    /// A PING request the peer must answer, outside the in-flight caps and the backlog;
    /// nobody waits for its result (it expires with `peer_timeout`).
    pub(super) fn send_liveness_ping(&mut self, limit: Duration, host: &mut impl Host<Work = W>) {
        let (result, completer) = crate::AsyncResult::<Value>::pending(Some(limit));
        result.detach();
        let seq = self.outbound.next_seq();
        let owner: Arc<dyn ResultOwner> = self.link.clone();
        let Ok(registered) = completer.shared.register(seq, owner) else { return };
        let frame =
            Frame::Request { seq, handle: Handle::Ping, args: Value::Tuple(vec![Value::None]), deadline: Some(limit) };
        match self.queue_frame(&frame) {
            Ok(()) => {
                self.outbound.sent(seq, completer);
                if let Some((at, _)) = registered {
                    self.arm_expiry(at, host);
                }
            }
            Err(e) => debug!(parent: &self.span, error = %e, "cannot send a liveness ping"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(300);
    const STEP: Duration = Duration::from_millis(100);

    #[test]
    fn a_silent_peer_is_lost_within_the_timeout_and_pinged_before() {
        let start = Instant::now();
        let mut live = Liveness::new(TIMEOUT, start);
        assert_eq!(live.interval(), STEP);
        assert_eq!(live.tick(start + STEP), Tick::Ping);
        assert_eq!(live.tick(start + 2 * STEP), Tick::Ping);
        assert_eq!(live.tick(start + 3 * STEP), Tick::Lost { silent: TIMEOUT });
    }

    #[test]
    fn the_last_frame_bounds_the_silence_from_above() {
        let start = Instant::now();
        let mut live = Liveness::new(TIMEOUT, start);
        assert_eq!(live.tick(start + STEP), Tick::Ping);
        // Something arrives in the second interval, then nothing.
        live.heard();
        live.sent();
        assert_eq!(live.tick(start + 2 * STEP), Tick::Quiet);
        assert_eq!(live.tick(start + 3 * STEP), Tick::Ping);
        // Counted from the start of the interval the frame arrived in: at most the timeout of
        // real silence.
        assert_eq!(live.tick(start + 4 * STEP), Tick::Lost { silent: TIMEOUT });
    }

    #[test]
    fn a_peer_heard_once_an_interval_is_never_lost() {
        let start = Instant::now();
        let mut live = Liveness::new(TIMEOUT, start);
        for i in 1..100 {
            live.heard();
            assert_eq!(live.tick(start + i * STEP), Tick::Notify, "tick {i}: heard, nothing sent");
        }
    }

    #[test]
    fn silence_while_reading_is_paused_says_nothing_about_the_peer() {
        let start = Instant::now();
        let mut live = Liveness::new(TIMEOUT, start);
        for i in 1..20 {
            live.reading_paused();
            live.sent();
            assert_eq!(live.tick(start + i * STEP), Tick::Quiet, "tick {i}");
        }
    }

    #[test]
    fn a_side_that_sends_nothing_sends_a_liveness_frame_every_interval() {
        let start = Instant::now();
        let mut live = Liveness::new(TIMEOUT, start);
        live.heard();
        assert_eq!(live.tick(start + STEP), Tick::Notify);
        // The liveness frame itself does not count: the next interval sends another.
        live.heard();
        assert_eq!(live.tick(start + 2 * STEP), Tick::Notify);
    }
}
