//! [`MissedCounter`]: a subscriber's count of the messages it missed, read from the gaps in
//! [`Published::seq`]. It only reads the numbers it is shown; it must never guess at what it
//! cannot see (before the first message, or across a broker that started again).

use super::Published;

/// Counts, for a subscriber, the messages it missed from the gaps in [`Published::seq`]; see
/// [`Published`]. Feed it every message received on one topic from one broker, in order.
///
/// Counting starts at the first message observed (what was published before it is not
/// missed). A `seq` not above the previous one means the broker started again (its numbers
/// restart at 1): counting resumes from it, and what was published between the broker's end
/// and the new message cannot be known. From a broker that sends no `seq` (0) it adds up
/// [`Published::missed`], which covers only the broker's overflow drops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MissedCounter {
    last_seq: Option<u64>,
    received: u64,
    missed: u64,
}

impl MissedCounter {
    /// A counter that has seen nothing.
    pub fn new() -> Self {
        MissedCounter::default()
    }

    /// Counts `message` as received; returns how many were missed just before it.
    pub fn observe(&mut self, message: &Published) -> u64 {
        self.received += 1;
        let missed = match (message.seq, self.last_seq) {
            (0, _) => message.missed,
            (seq, Some(last)) if seq > last => seq - last - 1,
            _ => 0,
        };
        if message.seq != 0 {
            self.last_seq = Some(message.seq);
        }
        self.missed += missed;
        missed
    }

    /// Messages observed.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Messages missed between the first and the latest observed.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// The `seq` of the latest message observed (`None` before the first, or from a broker
    /// that sends none).
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }
}
