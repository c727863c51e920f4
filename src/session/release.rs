//! Giving the peer's objects back: the releases this side owes once the last handle of a
//! proxy is gone, sent at the end of a turn — batched in `Release` frames on a wire that has
//! them, each as a numbered request whose reply is discarded on one that has not (RPyC's
//! `HANDLE_DEL`). Nothing here performs I/O.

use std::sync::Arc;

use tracing::{trace, warn};

use super::{Dialect, Host, Releases, Session};
use crate::{async_result::ResultOwner, config::Config, Frame, Value};

impl<W> Session<W> {
    pub(super) fn send_releases(&mut self, host: &mut impl Host<Work = W>) {
        if !self.life.is_open() {
            return;
        }
        let refs = std::mem::take(&mut self.imports.owed);
        trace!(parent: &self.span, count = refs.len(), "sending releases");
        if self.wire.releases == Releases::Requests {
            for (id, count) in refs {
                self.send_release_request(id, count, host);
            }
            return;
        }
        // Nearly always one frame; many proxies dropped in one turn go in several, each
        // within what a decoder with this side's limits takes (the peer would close the
        // connection over a frame past them).
        let chunk = release_chunk(&self.config, self.life.peer_max_frame_len());
        if refs.len() <= chunk {
            self.send_release_frame(refs);
        } else {
            for part in refs.chunks(chunk) {
                self.send_release_frame(part.to_vec());
            }
        }
    }

    pub(super) fn send_release_frame(&mut self, refs: Vec<(u64, u64)>) {
        if let Err(e) = self.queue_frame(&Frame::Release { refs }) {
            warn!(parent: &self.span, error = %e, "cannot send releases");
        }
    }

    /// A release as a numbered request whose reply nobody awaits (it expires with the request
    /// timeout if the peer never answers). It bypasses the in-flight cap: what is owed goes out
    /// promptly.
    pub(super) fn send_release_request(&mut self, instance_id: u64, count: u64, host: &mut impl Host<Work = W>) {
        let (result, completer) = crate::AsyncResult::<Value>::pending(self.config.request_timeout);
        result.detach();
        let seq = self.outbound.next_seq();
        let owner: Arc<dyn ResultOwner> = self.link.clone();
        let Ok(registered) = completer.shared.register(seq, owner) else { return };
        let sent =
            self.queue_with(|dialect, _, outbox, _| dialect.encode_release_request(seq, instance_id, count, outbox));
        match sent {
            Ok(()) => {
                self.outbound.sent(seq, completer);
                if let Some((at, _)) = registered {
                    self.arm_expiry(at, host);
                }
            }
            Err(e) => warn!(parent: &self.span, error = %e, "cannot send a release"),
        }
    }
}

/// The most `(instance id, count)` pairs one `Release` frame holds: a decoder counts two values
/// per pair against `max_values`, and a pair takes up to 20 bytes of the frame's length (with a
/// few bytes for the frame's own fields), which must be within this side's `max_frame_len` and
/// the one the peer announced (`peer_max`); at most 65,536 in any case.
fn release_chunk(config: &Config, peer_max: Option<usize>) -> usize {
    let by_values = config.decode_limits.max_values / 2;
    let max_frame_len = peer_max.map_or(config.max_frame_len, |peer| peer.min(config.max_frame_len));
    let by_bytes = max_frame_len.saturating_sub(16) / 20;
    by_values.min(by_bytes).clamp(1, 1 << 16)
}
