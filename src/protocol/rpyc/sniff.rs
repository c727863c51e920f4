//! Recognising RPyC 6 bytes that reached a connection speaking netref's native wire: a stock
//! rpyc client that dialled a native listener by mistake. The native side then closes that
//! connection with an error naming the cause instead of a decoding error about its own format.
//!
//! Only ever asked about a native connection's first frame *after* it failed to be a `Hello`:
//! a native handshake never runs this code, so it adds nothing to a native connect. It must
//! never allocate more than a small, fixed bound, whatever the peer sent.

use bytes::Bytes;

use super::{
    brine::{BrineLimits, TAG_TUPLE_1},
    message::{decode_message, MsgType},
};

/// The longest body looked at. A stock client's first frame is a small request (GETROOT, a
/// PING of about 500 bytes, a CLOSE); anything longer is not called an RPyC request.
const SNIFF_MAX: usize = 4096;

/// The highest `HANDLE_*` number of RPyC 6 (INSTANCECHECK).
const LAST_HANDLER: i64 = 20;

/// Whether `body`, one frame body as the native framing read it, is an uncompressed RPyC 6
/// request cut short by that framing.
///
/// RPyC's frame is `u32 BE len | u8 compressed | payload (len bytes) | 0x0A`; the native
/// framing reads the same length prefix and then `len` bytes, so its body is the compressed
/// flag and the payload without its last byte (that byte and the `0x0A` stay unread). The body
/// is an RPyC request if, for some last byte, the payload decodes as a REQUEST
/// `(seq, (handler, boxed_args))` with a handler of RPyC 6. A native `Hello` never passes:
/// after its kind `00` and version `01` comes the features varint, not a brine 2-tuple `0x11`
/// starting a whole message that ends one byte past the body.
pub(crate) fn is_rpyc6_request_cut_short(body: &[u8]) -> bool {
    // Uncompressed (flag 0), MSG_REQUEST, then brine's 2-tuple tag for (seq, args).
    let [0, msg, tuple_tag, ..] = *body else { return false };
    if msg != MsgType::Request.as_u8() || tuple_tag != TAG_TUPLE_1 + 1 || body.len() > SNIFF_MAX {
        return false;
    }
    let limits = BrineLimits::default();
    let mut payload = body[1..].to_vec();
    payload.push(0);
    (0..=u8::MAX).any(|last| {
        if let Some(end) = payload.last_mut() {
            *end = last;
        }
        let Ok(message) = decode_message(&Bytes::copy_from_slice(&payload), &limits) else { return false };
        match message.args.as_tuple() {
            Some([handler, _boxed]) => handler.as_i64().is_some_and(|h| (1..=LAST_HANDLER).contains(&h)),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::protocol::rpyc::{encode_message, Brine};

    /// The body the native framing reads from a whole RPyC frame (`len | flag | payload | 0a`).
    fn native_body(frame: &[u8]) -> &[u8] {
        let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        &frame[4..4 + len]
    }

    fn hex(text: &str) -> Vec<u8> {
        let digits: String = text.split_whitespace().collect();
        (0..digits.len()).step_by(2).map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn a_stock_clients_first_requests_are_recognised() {
        // rpyc-reference §8.2: GETROOT, seq 0, as rpyc 6.0.2 sends it.
        let getroot = hex("00000008 00 01 11 50 11 53 11 51 02 0a");
        assert!(is_rpyc6_request_cut_short(native_body(&getroot)));
        // CLOSE, seq 12 (same session).
        let close = hex("00000008 00 01 11 5c 11 52 11 51 02 0a");
        assert!(is_rpyc6_request_cut_short(native_body(&close)));
        // PING with a str argument, seq 200 (an int written as text).
        let mut payload = BytesMut::new();
        let args = Brine::tuple([Brine::Int(1), Brine::tuple([Brine::Int(1), Brine::str("ping data")])]);
        encode_message(MsgType::Request, 200, &args, &mut payload).unwrap();
        let mut body = vec![0];
        body.extend_from_slice(&payload[..payload.len() - 1]);
        assert!(is_rpyc6_request_cut_short(&body));
    }

    #[test]
    fn native_hellos_and_other_bytes_are_not() {
        // PROTOCOL.md §14.1: the default Hello and one announcing a root.
        let hello = hex("0000000a 00 01 01 80808008 8008 00");
        assert!(!is_rpyc6_request_cut_short(native_body(&hello)));
        let hello_root = hex("0000001c 00 01 01 80808008 8008 01 0f 64656d6f2e43616c63756c61746f72 01 07");
        assert!(!is_rpyc6_request_cut_short(native_body(&hello_root)));
        // A Hello whose features happen to be 0x11 (bits 0 and 4) is still a Hello.
        let hello_17 = hex("0000000a 00 01 11 80808008 8008 00");
        assert!(!is_rpyc6_request_cut_short(native_body(&hello_17)));
        // A REPLY, an rpyc-5 layout request, a compressed frame, a handler past 20, empty input.
        assert!(!is_rpyc6_request_cut_short(&hex("00 02 11 50 11 51")));
        assert!(!is_rpyc6_request_cut_short(&hex("00 12 51 50 11 53 11 51")));
        assert!(!is_rpyc6_request_cut_short(&hex("01 78 01 ed d0")));
        assert!(!is_rpyc6_request_cut_short(&hex("00 01 11 50 11 b3 11 51")));
        assert!(!is_rpyc6_request_cut_short(&[]));
        // Past the size bound, even a real request is not looked at.
        let mut long = vec![0, 1, 0x11];
        long.resize(SNIFF_MAX + 1, 0x50);
        assert!(!is_rpyc6_request_cut_short(&long));
    }
}
