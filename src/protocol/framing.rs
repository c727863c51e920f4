//! What every dialect's framing shares: how far a read buffer grows while a frame is only
//! partly there. A length prefix is a peer's claim; the buffer follows the bytes that arrive,
//! not the claim.

use bytes::BytesMut;

/// A partial frame's buffer is grown to hold the whole frame at once up to this size...
const EAGER_RESERVE: usize = 64 << 10;
/// ...and beyond it to at most this many times the bytes received so far (twice that when
/// it completes the frame).
const GROWTH: usize = 16;

/// Makes room in `src`, which holds the start of a frame of `total` bytes (header included),
/// for the rest of it — but never far more than the peer has sent: a length prefix alone must
/// not make a connection hold `max_frame_len` bytes (thousands of connections each announcing
/// a large frame would). Up to `EAGER_RESERVE` at once, beyond that `GROWTH` times what has
/// arrived, and the whole frame as soon as that reaches half of it: a step that fell just
/// short would cost a copy of nearly the whole frame for its last bytes. A large frame then
/// costs at most a copy of about 1/GROWTH of its bytes as the buffer grows.
pub(crate) fn reserve_for_partial_frame(src: &mut BytesMut, total: usize) {
    let allowed = src.len().saturating_mul(GROWTH).max(EAGER_RESERVE);
    let room = if allowed >= total / 2 { total } else { allowed };
    if src.capacity() < room {
        src.reserve(room - src.len());
    }
}
