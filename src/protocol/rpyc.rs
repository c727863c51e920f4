//! RPyC 6's own wire, byte for byte: the channel framing, brine and the message layout, for a
//! netref connection that speaks RPyC's dialect to stock Python peers.
//!
//! Three layers, each usable alone:
//!
//! * [`RpycChannelCodec`] (`channel`): `u32 BE len | u8 compressed | payload | 0x0A` frames,
//!   zlib-compressed payloads inflated within `max_frame_len`.
//! * [`encode_message`] / [`decode_message`] (`message`): a payload is `u8 msg` (1 REQUEST,
//!   2 REPLY, 3 EXCEPTION) followed by `brine((seq, args))`.
//! * [`Brine`], [`dump`], [`load`] (`brine`): RPyC's serializer for immutable values, every tag.
//!
//! Above them, [`values`] says what the brine trees mean: boxing and unboxing, id_packs,
//! request and reply arguments and vinegar, as conversions to and from netref's [`Value`](crate::Value).
//!
//! Brine's tags (big-endian throughout; "canonical" is what [`dump`] and stock write):
//!
//! | tag | value | after the tag |
//! |---|---|---|
//! | `00` `03` `04` `05` `06` | `None`, `True`, `False`, `NotImplemented`, `Ellipsis` | – |
//! | `01` | `b""` | – |
//! | `02` | `()` | – |
//! | `08` | `str` | a bytes value (`01`, `0a`–`0f`) holding UTF-8 |
//! | `0a`–`0d` | bytes of 1–4 bytes | the bytes |
//! | `0e` / `0f` | bytes (canonical: 5–255 / 256+) | `u8` / `u32` length, the bytes |
//! | `10`–`13` | tuple of 1–4 items | the items |
//! | `14` / `15` | tuple (canonical: 5–255 / 256+ items) | `u8` / `u32` count, the items |
//! | `16` / `17` | int outside `-48..=159` (canonical: text under 256 / 256+ chars) | `u8` / `u32` length, `str(int)` in ASCII |
//! | `18` | float | binary64 |
//! | `19` | slice | a 3-tuple `(start, stop, step)` |
//! | `1a` | frozenset | a tuple of the members |
//! | `1b` | complex | binary64 real, binary64 imaginary |
//! | `20`–`ef` | int `-48..=159` | – (value = tag − `0x50`) |
//! | `07` `09` `1c`–`1f` `f0`–`ff` | invalid | |
//!
//! This module turns a peer's bytes into values and values into bytes, and nothing else. It must
//! never panic on a peer's bytes; never allocate beyond its limits (`max_frame_len`,
//! [`BrineLimits`]) or beyond the bytes that actually arrived because a length field said so;
//! and never unpickle, import, evaluate or execute anything a peer sends. It must not depend on
//! actix or on a connection. Boxing, id_packs and vinegar (what the values *mean*) are in
//! [`values`], pure conversions that still touch no connection.

mod brine;
mod channel;
mod message;
mod sniff;
pub mod values;
mod vinegar;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod values_tests;

pub use brine::{
    dump, dump_to_bytes, load, Brine, BrineLimits, CPYTHON_MAX_INT_DIGITS, IMMEDIATE_MAX, IMMEDIATE_MIN, TAG_BYTES_1,
    TAG_BYTES_4, TAG_BYTES_L1, TAG_BYTES_L4, TAG_COMPLEX, TAG_ELLIPSIS, TAG_EMPTY_BYTES, TAG_EMPTY_TUPLE, TAG_FALSE,
    TAG_FLOAT, TAG_FROZENSET, TAG_IMMEDIATE_FIRST, TAG_IMMEDIATE_LAST, TAG_INT_L1, TAG_INT_L4, TAG_NONE,
    TAG_NOT_IMPLEMENTED, TAG_SLICE, TAG_STR, TAG_TRUE, TAG_TUPLE_1, TAG_TUPLE_4, TAG_TUPLE_L1, TAG_TUPLE_L4,
};
pub use channel::{
    inflate_bounded, RpycChannelCodec, HEADER_LEN, STOCK_COMPRESSION_LEVEL, STOCK_COMPRESSION_THRESHOLD, TRAILER,
};
pub use message::{decode_message, encode_message, Message, MsgType};
pub(crate) use sniff::is_rpyc6_request_cut_short;
