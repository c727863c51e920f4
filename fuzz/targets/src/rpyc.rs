//! Targets on RPyC's wire: the channel framing with compressed payloads, brine and the message
//! layout, and a session fed raw bytes after a stock client's opening.

use bytes::{Bytes, BytesMut};
use netref::dev::{
    rpyc::{
        decode_message, dump_to_bytes, encode_message, inflate_bounded, load,
        values::{decode_exception, decode_reply, decode_request},
        BrineLimits, MsgType, RpycChannelCodec,
    },
    WireRefs,
};
use tokio_util::codec::Decoder;

use crate::peer::{self, WireKind};

/// The channel target's frame limit: small, so that inflating past it is cheap to reach.
const CHANNEL_LIMIT: usize = 64 << 10;

/// See [`crate::rpyc_channel`].
pub(crate) fn channel(data: &[u8]) {
    let whole = decode_all(data, data.len());
    let cut = data.first().map_or(0, |&b| usize::from(b) % (data.len() + 1));
    assert_eq!(whole, decode_all(data, cut), "split at {cut}");
    // The bytes as one zlib stream: inflated within the limit or refused.
    if let Ok(inflated) = inflate_bounded(data, CHANNEL_LIMIT) {
        assert!(inflated.len() <= CHANNEL_LIMIT, "inflated {} bytes past the limit {CHANNEL_LIMIT}", inflated.len());
    }
    for (i, payload) in whole.iter().filter_map(|p| p.as_ref().ok()).enumerate() {
        assert!(!payload.is_empty(), "an empty payload was yielded");
        assert!(payload.len() <= CHANNEL_LIMIT, "a payload of {} bytes, past the limit", payload.len());
        // Every payload plain, the first also compressed (a zlib encoder costs more than the
        // rest of the input's run).
        let compressions: &[Option<usize>] = if i == 0 { &[None, Some(0)] } else { &[None] };
        for &compress in compressions {
            let codec = RpycChannelCodec::with_max_frame_len(CHANNEL_LIMIT).compress_above(compress);
            let mut framed = BytesMut::new();
            codec
                .encode_frame_with(&mut framed, |dst| {
                    dst.extend_from_slice(payload);
                    Ok(())
                })
                .expect("a payload within the limit frames");
            let again = codec.clone().decode(&mut framed).expect("a frame it wrote decodes").expect("a whole frame");
            assert_eq!(&again, payload, "the payload changed through framing (compressed: {compress:?})");
            assert!(framed.is_empty());
        }
    }
}

/// Every payload in `data` read as two reads split at `cut`, then the end of the stream.
fn decode_all(data: &[u8], cut: usize) -> Vec<Result<Bytes, String>> {
    let mut codec = RpycChannelCodec::with_max_frame_len(CHANNEL_LIMIT);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in [&data[..cut], &data[cut..]] {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(payload)) => out.push(Ok(payload)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }
    match codec.decode_eof(&mut buf) {
        Ok(Some(payload)) => out.push(Ok(payload)),
        Ok(None) => {}
        Err(e) => out.push(Err(e.to_string())),
    }
    out
}

/// See [`crate::rpyc_brine`].
pub(crate) fn brine(data: &[u8]) {
    let limits = BrineLimits::default();
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(value) = load(&bytes, &limits) {
        let dumped = dump_to_bytes(&value).expect("a value that loaded dumps");
        let again = load(&dumped, &limits).expect("dumped bytes load");
        assert_eq!(again, value, "load(dump(value)) is not the value");
        assert_eq!(dump_to_bytes(&again).expect("dumps again"), dumped, "dump is not stable");
    }
    // The same bytes as a message payload: `u8 msg` then brine `(seq, args)`.
    if let Ok(message) = decode_message(&bytes, &limits) {
        let mut encoded = BytesMut::new();
        encode_message(message.msg, message.seq, &message.args, &mut encoded).expect("a message that decoded encodes");
        let again = decode_message(&encoded.freeze(), &limits).expect("an encoded message decodes");
        assert_eq!(again, message, "decode(encode(message)) is not the message");
        // What the message's arguments mean: errors are the peer's, never a panic.
        match message.msg {
            MsgType::Request => drop(decode_request(message.args, &WireRefs)),
            MsgType::Reply => drop(decode_reply(message.args, &WireRefs)),
            MsgType::Exception => drop(decode_exception(message.args)),
        }
    }
}

/// See [`crate::rpyc_session`].
pub(crate) fn session_bytes(data: &[u8]) {
    let (mut session, mut peer) = peer::open(WireKind::Rpyc);
    peer::feed(&mut session, &mut peer, data);
    peer::finish(session, peer);
}
