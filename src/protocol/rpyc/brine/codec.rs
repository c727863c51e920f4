//! [`dump`] and [`load`]: brine's bytes for a [`Brine`] value and back. `load` treats its input
//! as a peer's: it never panics, never reserves more than the input can fill, and bounds depth,
//! value count and int length.

use bytes::{BufMut, Bytes, BytesMut};

use super::*;
use crate::{value::BigInt, ProtocolError};

/// A tuple of up to this many items gets room for all of them at once; a longer one grows as
/// its items are decoded, so a count alone never reserves much.
const PREALLOCATED_ITEMS: usize = 1024;

/// Bounds on what [`load`] accepts from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrineLimits {
    /// How deep containers (tuple, frozenset, slice) may nest: the outermost value is at depth
    /// 0, a container's items one deeper ([`ProtocolError::TooDeep`] past it). It also bounds
    /// the decoder's recursion. Default 64.
    pub max_depth: usize,
    /// How many values one [`load`] may produce, containers and their items each counting one
    /// ([`ProtocolError::TooManyValues`] past it). Default 1,048,576.
    pub max_values: usize,
    /// How many digits an int may have. Default [`CPYTHON_MAX_INT_DIGITS`] (4300), the most a
    /// stock peer sends or accepts; decimal text costs quadratic time to convert, which is why
    /// CPython bounds it too.
    pub max_int_digits: usize,
}

impl Default for BrineLimits {
    fn default() -> Self {
        BrineLimits { max_depth: 64, max_values: 1 << 20, max_int_digits: CPYTHON_MAX_INT_DIGITS }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// Appends the brine encoding of `value` to `dst`, with the shortest tag for every value (as
/// rpyc 6 writes it).
///
/// Fails only for a byte string, string, int text or tuple longer than brine's `u32` length
/// fields allow ([`ProtocolError::FrameTooLarge`]); `dst` is then left as it was. Recursion
/// follows the value's own depth: a value built locally is trusted to be reasonable.
pub fn dump(value: &Brine, dst: &mut BytesMut) -> Result<(), ProtocolError> {
    let start = dst.len();
    let result = dump_value(value, dst);
    if result.is_err() {
        dst.truncate(start);
    }
    result
}

/// [`dump`] into a new buffer.
pub fn dump_to_bytes(value: &Brine) -> Result<Bytes, ProtocolError> {
    let mut dst = BytesMut::new();
    dump(value, &mut dst)?;
    Ok(dst.freeze())
}

fn dump_value(value: &Brine, dst: &mut BytesMut) -> Result<(), ProtocolError> {
    match value {
        Brine::None => dst.put_u8(TAG_NONE),
        Brine::Bool(true) => dst.put_u8(TAG_TRUE),
        Brine::Bool(false) => dst.put_u8(TAG_FALSE),
        Brine::Ellipsis => dst.put_u8(TAG_ELLIPSIS),
        Brine::NotImplemented => dst.put_u8(TAG_NOT_IMPLEMENTED),
        Brine::Int(v) => dump_i64(*v, dst),
        Brine::BigInt(v) => match fits_i64(v.as_str()) {
            Some(small) => dump_i64(small, dst),
            None => dump_decimal(v.as_str().as_bytes(), dst)?,
        },
        Brine::Float(v) => {
            dst.put_u8(TAG_FLOAT);
            dst.put_f64(*v);
        }
        Brine::Complex { re, im } => {
            dst.put_u8(TAG_COMPLEX);
            dst.put_f64(*re);
            dst.put_f64(*im);
        }
        Brine::Str(s) => {
            dst.put_u8(TAG_STR);
            dump_bytes(s.as_bytes(), dst)?;
        }
        Brine::Bytes(b) => dump_bytes(b, dst)?,
        Brine::Tuple(items) => dump_tuple(items, dst)?,
        Brine::FrozenSet(items) => {
            dst.put_u8(TAG_FROZENSET);
            dump_tuple(items, dst)?;
        }
        Brine::Slice { start, stop, step } => {
            dst.put_u8(TAG_SLICE);
            dst.put_u8(TAG_TUPLE_1 + 2);
            dump_value(start, dst)?;
            dump_value(stop, dst)?;
            dump_value(step, dst)?;
        }
    }
    Ok(())
}

fn dump_i64(v: i64, dst: &mut BytesMut) {
    if (IMMEDIATE_MIN..=IMMEDIATE_MAX).contains(&v) {
        // In range, so `v + 0x50` is within 0x20..=0xef.
        dst.put_u8(u8::try_from(v + IMMEDIATE_BIAS).unwrap_or(TAG_NONE));
        return;
    }
    // `str(v)` of an i64 is at most 20 characters: written backwards into a stack buffer.
    let mut text = [0u8; 20];
    let mut at = text.len();
    let mut rest = v.unsigned_abs();
    loop {
        at -= 1;
        text[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if v < 0 {
        at -= 1;
        text[at] = b'-';
    }
    dst.put_u8(TAG_INT_L1);
    dst.put_u8((text.len() - at) as u8);
    dst.put_slice(&text[at..]);
}

/// Writes decimal text with INT_L1 (under 256 characters) or INT_L4.
fn dump_decimal(text: &[u8], dst: &mut BytesMut) -> Result<(), ProtocolError> {
    put_length(text.len(), TAG_INT_L1, TAG_INT_L4, dst)?;
    dst.put_slice(text);
    Ok(())
}

fn dump_bytes(b: &[u8], dst: &mut BytesMut) -> Result<(), ProtocolError> {
    match b.len() {
        0 => dst.put_u8(TAG_EMPTY_BYTES),
        n @ 1..=4 => dst.put_u8(TAG_BYTES_1 + (n as u8 - 1)),
        n => put_length(n, TAG_BYTES_L1, TAG_BYTES_L4, dst)?,
    }
    dst.put_slice(b);
    Ok(())
}

fn dump_tuple(items: &[Brine], dst: &mut BytesMut) -> Result<(), ProtocolError> {
    match items.len() {
        0 => dst.put_u8(TAG_EMPTY_TUPLE),
        n @ 1..=4 => dst.put_u8(TAG_TUPLE_1 + (n as u8 - 1)),
        n => put_length(n, TAG_TUPLE_L1, TAG_TUPLE_L4, dst)?,
    }
    items.iter().try_for_each(|item| dump_value(item, dst))
}

/// Writes `short` and a `u8` length under 256, else `long` and a `u32` length.
fn put_length(len: usize, short: u8, long: u8, dst: &mut BytesMut) -> Result<(), ProtocolError> {
    if let Ok(len) = u8::try_from(len) {
        dst.put_u8(short);
        dst.put_u8(len);
    } else {
        let len32 = u32::try_from(len).map_err(|_| ProtocolError::FrameTooLarge { len, max: u32::MAX as usize })?;
        dst.put_u8(long);
        dst.put_u32(len32);
    }
    Ok(())
}

/// The value of canonical decimal text when it fits `i64`.
pub(super) fn fits_i64(text: &str) -> Option<i64> {
    if text.len() <= 20 {
        text.parse().ok()
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// Decodes one brine value that fills `src` exactly.
///
/// Every tag rpyc 6 writes is accepted, in its long forms too (a 3-tuple with a `u8` count, a
/// short byte string with a `u32` length, an int with leading zeros). Refused, each with a typed
/// error and never a panic: unknown tags ([`ProtocolError::UnknownValueTag`]: `0x07`, `0x09`,
/// `0x1c..=0x1f`, `0xf0..=0xff`), a value cut short or a length past the end
/// ([`ProtocolError::Malformed`]), bytes after the value ([`ProtocolError::TrailingBytes`]; stock
/// ignores them), a `str` that is not a byte string of UTF-8, a slice that is not a 3-tuple, a
/// frozenset that is not a tuple, int text that Python's `int()` refuses or that has more than
/// `max_int_digits` digits, nesting past `max_depth` and more than `max_values` values.
///
/// Byte strings are zero-copy slices of `src`. No length field makes it reserve more than the
/// bytes left in `src` can fill.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netref::dev::rpyc::{dump, load, Brine, BrineLimits};
///
/// // slice(1, None, 2), as rpyc 6 writes it.
/// let bytes = Bytes::from_static(b"\x19\x12\x51\x00\x52");
/// let value = load(&bytes, &BrineLimits::default()).unwrap();
/// assert_eq!(value, Brine::slice(Brine::Int(1), Brine::None, Brine::Int(2)));
/// let mut again = BytesMut::new();
/// dump(&value, &mut again).unwrap();
/// assert_eq!(again, bytes);
/// // True is not 1, and 0xff is no tag.
/// assert_eq!(load(&Bytes::from_static(b"\x03"), &BrineLimits::default()).unwrap(), Brine::Bool(true));
/// assert!(load(&Bytes::from_static(b"\xff"), &BrineLimits::default()).is_err());
/// ```
pub fn load(src: &Bytes, limits: &BrineLimits) -> Result<Brine, ProtocolError> {
    let mut reader = Reader { src, pos: 0, limits, values: 0 };
    let value = reader.value(0)?;
    match src.len() - reader.pos {
        0 => Ok(value),
        trailing => Err(ProtocolError::TrailingBytes(trailing)),
    }
}

struct Reader<'a> {
    src: &'a Bytes,
    pos: usize,
    limits: &'a BrineLimits,
    values: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.src.len() - self.pos
    }

    fn truncated(&self, what: &str, needed: usize) -> ProtocolError {
        ProtocolError::Malformed(format!(
            "brine {what} needs {needed} bytes at offset {}, only {} left",
            self.pos,
            self.remaining()
        ))
    }

    /// The next `n` bytes as a slice of the input.
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], ProtocolError> {
        if n > self.remaining() {
            return Err(self.truncated(what, n));
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.src[start..start + n])
    }

    /// The next `n` bytes as a zero-copy [`Bytes`].
    fn take_shared(&mut self, n: usize, what: &str) -> Result<Bytes, ProtocolError> {
        if n > self.remaining() {
            return Err(self.truncated(what, n));
        }
        let start = self.pos;
        self.pos += n;
        Ok(self.src.slice(start..start + n))
    }

    fn u8(&mut self, what: &str) -> Result<u8, ProtocolError> {
        Ok(self.take(1, what)?[0])
    }

    fn u32_len(&mut self, what: &str) -> Result<usize, ProtocolError> {
        let b = self.take(4, what)?;
        Ok(usize::try_from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(usize::MAX))
    }

    fn f64(&mut self, what: &str) -> Result<f64, ProtocolError> {
        let b = self.take(8, what)?;
        Ok(f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    /// Counts `n` more values against `max_values`.
    fn count(&mut self, n: usize) -> Result<(), ProtocolError> {
        match self.values.checked_add(n) {
            Some(total) if total <= self.limits.max_values => {
                self.values = total;
                Ok(())
            }
            _ => Err(ProtocolError::TooManyValues { max: self.limits.max_values }),
        }
    }

    /// One value at nesting depth `depth`.
    fn value(&mut self, depth: usize) -> Result<Brine, ProtocolError> {
        if depth > self.limits.max_depth {
            return Err(ProtocolError::TooDeep { max: self.limits.max_depth });
        }
        self.count(1)?;
        let tag = self.u8("tag")?;
        Ok(match tag {
            TAG_NONE => Brine::None,
            TAG_TRUE => Brine::Bool(true),
            TAG_FALSE => Brine::Bool(false),
            TAG_NOT_IMPLEMENTED => Brine::NotImplemented,
            TAG_ELLIPSIS => Brine::Ellipsis,
            TAG_EMPTY_BYTES | TAG_BYTES_1..=TAG_BYTES_L4 => Brine::Bytes(self.bytes_after(tag)?),
            TAG_STR => {
                let tag = self.u8("str's byte string tag")?;
                if !is_bytes_tag(tag) {
                    return Err(ProtocolError::Malformed(format!(
                        "brine str must hold a byte string, found tag 0x{tag:02x}"
                    )));
                }
                let utf8 = self.bytes_after(tag)?;
                match std::str::from_utf8(&utf8) {
                    Ok(s) => Brine::Str(s.to_owned()),
                    Err(e) => return Err(ProtocolError::Malformed(format!("brine str is not UTF-8: {e}"))),
                }
            }
            TAG_EMPTY_TUPLE | TAG_TUPLE_1..=TAG_TUPLE_L4 => {
                let n = self.tuple_len(tag)?;
                Brine::Tuple(self.items(n, depth)?)
            }
            TAG_FROZENSET => {
                let tag = self.u8("frozenset's tuple tag")?;
                if !is_tuple_tag(tag) {
                    return Err(ProtocolError::Malformed(format!(
                        "brine frozenset must hold a tuple, found tag 0x{tag:02x}"
                    )));
                }
                let n = self.tuple_len(tag)?;
                Brine::FrozenSet(self.items(n, depth)?)
            }
            TAG_SLICE => {
                let tag = self.u8("slice's tuple tag")?;
                let n = if is_tuple_tag(tag) { self.tuple_len(tag)? } else { usize::MAX };
                if n != 3 {
                    return Err(ProtocolError::Malformed(format!(
                        "brine slice must hold a 3-tuple, found tag 0x{tag:02x}{}",
                        if n == usize::MAX { String::new() } else { format!(" with {n} items") }
                    )));
                }
                let start = self.value(depth + 1)?;
                let stop = self.value(depth + 1)?;
                let step = self.value(depth + 1)?;
                Brine::slice(start, stop, step)
            }
            TAG_INT_L1 | TAG_INT_L4 => {
                let len =
                    if tag == TAG_INT_L1 { usize::from(self.u8("int length")?) } else { self.u32_len("int length")? };
                let max_digits = self.limits.max_int_digits;
                let text = self.take(len, "int text")?;
                parse_python_int(text, max_digits)?
            }
            TAG_FLOAT => Brine::Float(self.f64("float")?),
            TAG_COMPLEX => {
                let re = self.f64("complex")?;
                let im = self.f64("complex")?;
                Brine::Complex { re, im }
            }
            TAG_IMMEDIATE_FIRST..=TAG_IMMEDIATE_LAST => Brine::Int(i64::from(tag) - IMMEDIATE_BIAS),
            unknown => return Err(ProtocolError::UnknownValueTag(unknown)),
        })
    }

    /// The byte string after a bytes tag (`0x01`, `0x0a..=0x0f`).
    fn bytes_after(&mut self, tag: u8) -> Result<Bytes, ProtocolError> {
        let len = match tag {
            TAG_EMPTY_BYTES => 0,
            TAG_BYTES_L1 => usize::from(self.u8("byte string length")?),
            TAG_BYTES_L4 => self.u32_len("byte string length")?,
            short => usize::from(short - TAG_BYTES_1) + 1,
        };
        self.take_shared(len, "byte string")
    }

    /// The item count after a tuple tag (`0x02`, `0x10..=0x15`).
    fn tuple_len(&mut self, tag: u8) -> Result<usize, ProtocolError> {
        Ok(match tag {
            TAG_EMPTY_TUPLE => 0,
            TAG_TUPLE_L1 => usize::from(self.u8("tuple length")?),
            TAG_TUPLE_L4 => self.u32_len("tuple length")?,
            short => usize::from(short - TAG_TUPLE_1) + 1,
        })
    }

    /// `n` items one level below `depth`.
    fn items(&mut self, n: usize, depth: usize) -> Result<Vec<Brine>, ProtocolError> {
        // Every item takes at least one byte: a count past the bytes left is a lie, refused
        // before anything is reserved for it.
        if n > self.remaining() {
            return Err(self.truncated("tuple items", n));
        }
        let mut items = Vec::with_capacity(n.min(PREALLOCATED_ITEMS));
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(items)
    }
}

fn is_bytes_tag(tag: u8) -> bool {
    tag == TAG_EMPTY_BYTES || (TAG_BYTES_1..=TAG_BYTES_L4).contains(&tag)
}

fn is_tuple_tag(tag: u8) -> bool {
    tag == TAG_EMPTY_TUPLE || (TAG_TUPLE_1..=TAG_TUPLE_L4).contains(&tag)
}

/// Python's `int(text)` for base 10, bounded to `max_digits` digits: ASCII whitespace around,
/// an optional sign, then digits with single underscores between them.
pub(super) fn parse_python_int(text: &[u8], max_digits: usize) -> Result<Brine, ProtocolError> {
    // Stock writes `str(n)`: the canonical form, read without building its text first (the
    // length check is conservative: the text counts the sign, the limit does not).
    match canonical_up_to_u64(text) {
        Some(value) if text.len() <= max_digits => Ok(value),
        _ => parse_python_int_text(text, max_digits),
    }
}

/// The value of canonical text of at most 20 digits (`str(n)` for `-2^63 <= n < 2^64`, which
/// is every seq, id and everyday int a peer sends): an `Int` within `i64`, a `BigInt` above it.
/// `None` for anything else (a sign other than a lone `-`, leading zeros, `-0`, underscores,
/// whitespace, a value outside that range), which [`parse_python_int_text`] then reads.
fn canonical_up_to_u64(text: &[u8]) -> Option<Brine> {
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 20 || (digits[0] == b'0' && (negative || digits.len() > 1)) {
        return None;
    }
    let mut magnitude: u64 = 0;
    for &b in digits {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        magnitude = magnitude.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    if negative {
        return i64::try_from(-i128::from(magnitude)).ok().map(Brine::Int);
    }
    match i64::try_from(magnitude) {
        Ok(small) => Some(Brine::Int(small)),
        // Canonical digits, so the text is the big int's own.
        Err(_) => std::str::from_utf8(digits).ok().and_then(|t| BigInt::parse(t).ok()).map(Brine::BigInt),
    }
}

/// [`parse_python_int`] for any text Python's `int()` reads, through its canonical form.
fn parse_python_int_text(text: &[u8], max_digits: usize) -> Result<Brine, ProtocolError> {
    let invalid = || {
        let shown = String::from_utf8_lossy(&text[..text.len().min(40)]).into_owned();
        ProtocolError::Malformed(format!("brine int text is not a decimal integer: {shown:?}"))
    };
    let body = text.trim_ascii();
    let (negative, digits) = match body.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, body),
    };
    // Digits with single underscores between them: no leading, trailing or double underscore.
    if digits.first().is_none_or(|b| !b.is_ascii_digit()) || digits.last().is_none_or(|b| !b.is_ascii_digit()) {
        return Err(invalid());
    }
    let mut count = 0usize;
    let mut previous_underscore = false;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                count += 1;
                previous_underscore = false;
            }
            b'_' if !previous_underscore => previous_underscore = true,
            _ => return Err(invalid()),
        }
    }
    if count > max_digits {
        return Err(ProtocolError::Malformed(format!(
            "brine int has {count} digits, more than the limit of {max_digits} (CPython's own limit is {CPYTHON_MAX_INT_DIGITS})"
        )));
    }
    // Canonical text: the sign if non-zero, then the digits without underscores or leading zeros.
    let significant = digits.iter().position(|&b| b != b'0' && b != b'_').map_or(&digits[..0], |at| &digits[at..]);
    if significant.is_empty() {
        return Ok(Brine::Int(0));
    }
    let mut canonical = String::with_capacity(significant.len() + 1);
    if negative {
        canonical.push('-');
    }
    canonical.extend(significant.iter().filter(|&&b| b != b'_').map(|&b| char::from(b)));
    if let Some(small) = fits_i64(&canonical) {
        return Ok(Brine::Int(small));
    }
    BigInt::parse(&canonical).map(Brine::BigInt).map_err(|_| invalid())
}
