//! Targets on netref's native wire: the frame codec alone, and a session fed raw bytes after
//! the handshake.

use bytes::BytesMut;
use netref::{
    dev::{Frame, FrameCodec, FEATURES},
    WireRef,
};
use tokio_util::codec::Decoder;

use crate::peer::{self, WireKind};

/// See [`crate::native_frame`].
pub(crate) fn frame_codec(data: &[u8]) {
    let whole = decode_all(data, data.len());
    // The same bytes in two reads (cut where the first byte says) give the same frames.
    let cut = data.first().map_or(0, |&b| usize::from(b) % (data.len() + 1));
    assert_eq!(format!("{whole:?}"), format!("{:?}", decode_all(data, cut)), "split at {cut}");
    let codec = codec();
    for frame in whole.iter().flatten() {
        let mut first = BytesMut::new();
        codec.encode_with(frame, &netref::dev::WireRefs, &mut first).expect("a frame that decoded encodes");
        let bytes = first.clone().freeze();
        let again = codec.clone().decode(&mut first).expect("re-encoded bytes decode").expect("a whole frame");
        assert!(first.is_empty(), "re-encoded bytes hold one frame");
        // Debug text compares NaN payload-free floats as equal and keeps -0.0 apart.
        assert_eq!(format!("{frame:?}"), format!("{again:?}"), "decode(encode(frame)) is not the frame");
        let mut second = BytesMut::new();
        codec.encode_with(&again, &netref::dev::WireRefs, &mut second).expect("encodes again");
        assert_eq!(bytes, second.freeze(), "encoding is not stable");
    }
}

fn codec() -> FrameCodec {
    FrameCodec::new().with_peer_features(FEATURES)
}

/// Every frame in `data` read as two reads split at `cut`, then the end of the stream; the
/// last entry is the error that ended it, if one did.
fn decode_all(data: &[u8], cut: usize) -> Vec<Result<Frame<WireRef>, String>> {
    let mut codec = codec();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in [&data[..cut], &data[cut..]] {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => out.push(Ok(frame)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }
    match codec.decode_eof(&mut buf) {
        Ok(Some(frame)) => out.push(Ok(frame)),
        Ok(None) => {}
        Err(e) => out.push(Err(e.to_string())),
    }
    out
}

/// See [`crate::native_session`].
pub(crate) fn session_bytes(data: &[u8]) {
    let (mut session, mut peer) = peer::open(WireKind::Native);
    peer::feed(&mut session, &mut peer, data);
    peer::finish(session, peer);
}
