//! What RPyC's boxed brine trees mean in netref's terms: boxing and unboxing (`Connection._box`
//! / `_unbox`), id_packs, request and reply arguments, and vinegar (exceptions).
//!
//! Pure conversions: no I/O and no connection. References go through the same traits as the
//! native codec, [`RefBoxer`] (the exporter's side) and [`RefUnboxer`] (the importer's side), so
//! these functions never touch a connection's tables. Their signatures fit RPyC as they are: a
//! [`RefLabel`] is RPyC's `LABEL_LOCAL_REF` / `LABEL_REMOTE_REF` seen from the receiver, and an
//! [`IdPackRef`] is an id_pack once its ids are known to fit `u64` (see below).
//!
//! # Boxing
//!
//! | boxed | unboxed |
//! |---|---|
//! | `(1, v)` `LABEL_VALUE` | `v` as a plain [`Value`] (every brine type, exactly) |
//! | `(2, (boxed, …))` `LABEL_TUPLE` | [`Value::Tuple`] of the unboxed items |
//! | `(3, id_pack)` `LABEL_LOCAL_REF` | the receiver's own object, via [`RefUnboxer`] with [`RefLabel::Local`] |
//! | `(4, id_pack)` `LABEL_REMOTE_REF` | a proxy for the sender's object, via [`RefUnboxer`] with [`RefLabel::Remote`] |
//!
//! [`box_value`] writes the shortest form, as stock does: `(1, v)` when nothing inside is a
//! reference (or a list or map), `(2, (…))` only for a tuple with a reference inside.
//!
//! **Lists and maps.** RPyC passes Python's `list` and `dict` by reference (brine has no list or
//! dict tag). A [`Value::List`] or [`Value::Map`] is therefore boxed by the [`RpycBoxer`] hook
//! ([`RpycBoxer::box_list`], [`RpycBoxer::box_map`]), which a connection implements by exporting
//! the container as a `builtins.list` / `builtins.dict` object and answering its
//! `(LABEL_REMOTE_REF, id_pack)`. The default refuses with [`ProtocolError::BadReference`]
//! naming the container: nothing is silently turned into a tuple. A list or map can never be
//! sent *by value*, so it is also refused inside a frozenset or a slice, and as an exception
//! argument it travels as its `repr` (as stock does with any argument brine cannot dump).
//!
//! **Ids.** An id_pack is `(str name, int class_id, int instance_id)`; the ids are CPython
//! `id()`s (addresses), any non-negative int on the wire. netref keeps them as `u64`: an id in
//! `0..2^64` (written as an immediate, `INT_L1` or `INT_L4` int) is accepted, a negative id or
//! one of 2^64 or more is refused as [`ProtocolError::Malformed`] ("… beyond u64"). No CPython
//! on a 64-bit machine produces one; refusing is better than truncating two ids onto one. The
//! name must be a brine `str` (stock writes one; it would `str()` anything else).
//!
//! # Messages
//!
//! A request's args are `(handler, boxed_args)` ([`decode_request`], [`encode_request`]), a
//! reply's the boxed result ([`decode_reply`], [`encode_reply`]), an exception's a vinegar tuple
//! or the int `1` ([`decode_exception`], [`encode_exception`]). A request that cannot be
//! decoded (an unknown handler, a reference the receiver does not know) is answered, as stock
//! answers it, with an exception carrying the same seq: [`request_refusal`] says which.

use crate::{
    error::{kinds, traceback_text, ProtocolError, RemoteError},
    protocol::{
        Handle, IdPackRef, RefBoxer, RefUnboxer, UnknownHandle, WireRefs, LABEL_LOCAL_REF, LABEL_REMOTE_REF,
        LABEL_TUPLE, LABEL_VALUE,
    },
    value::{BigInt, IdPack, RefLabel, Value, WireRef},
};

use super::brine::Brine;
pub use super::vinegar::{
    decode_exception, encode_exception, python_repr, python_str_of_args, python_str_of_exception,
};

/// The hook for what brine cannot carry by value: Python lists and dicts, which RPyC passes by
/// reference. A connection implements it by exporting the container as a `builtins.list` /
/// `builtins.dict` object and returning `(LABEL_REMOTE_REF, id_pack)` (see [`box_ref_label`]).
/// The defaults refuse with [`ProtocolError::BadReference`] naming the container.
pub trait RpycBoxer<R>: RefBoxer<R> {
    /// The boxed form of a list (`items` as given).
    fn box_list(&self, items: &[Value<R>]) -> Result<Brine, ProtocolError> {
        Err(refuse_container("list", items.len()))
    }

    /// The boxed form of a map (`pairs` as given).
    fn box_map(&self, pairs: &[(Value<R>, Value<R>)]) -> Result<Brine, ProtocolError> {
        Err(refuse_container("dict", pairs.len()))
    }
}

/// [`WireRefs`] passes references through as they are and refuses lists and maps.
impl RpycBoxer<WireRef> for WireRefs {}

fn refuse_container(what: &str, len: usize) -> ProtocolError {
    ProtocolError::BadReference(format!(
        "a {what} of {len} items cannot be sent to an rpyc peer by value (rpyc passes a {what} by reference, \
         and this side does not export it as builtins.{what}); send a tuple instead"
    ))
}

// ---------------------------------------------------------------------------------------------
// Plain values
// ---------------------------------------------------------------------------------------------

/// A plain brine value as a [`Value`], type for type: `bool` stays distinct from `int`, `str`
/// from `bytes`, floats keep their bits, ints beyond `i64` become [`Value::BigInt`]. Never fails:
/// every brine value has its `Value`.
pub fn brine_to_value<R>(brine: Brine) -> Value<R> {
    match brine {
        Brine::None => Value::None,
        Brine::Bool(b) => Value::Bool(b),
        Brine::Int(i) => Value::Int(i),
        Brine::BigInt(b) => Value::BigInt(b),
        Brine::Float(x) => Value::Float(x),
        Brine::Complex { re, im } => Value::Complex(re, im),
        Brine::Str(s) => Value::Str(s),
        Brine::Bytes(b) => Value::Bytes(b),
        Brine::Tuple(items) => Value::Tuple(items.into_iter().map(brine_to_value).collect()),
        Brine::FrozenSet(items) => Value::FrozenSet(items.into_iter().map(brine_to_value).collect()),
        Brine::Slice { start, stop, step } => {
            Value::Slice(Box::new([brine_to_value(*start), brine_to_value(*stop), brine_to_value(*step)]))
        }
        Brine::Ellipsis => Value::Ellipsis,
        Brine::NotImplemented => Value::NotImplemented,
    }
}

/// A [`Value`] as a plain brine value, or `None` when brine cannot carry it by value: a
/// reference, a list or a map anywhere inside (RPyC's `brine.dumpable`).
pub fn value_to_brine<R>(value: &Value<R>) -> Option<Brine> {
    Some(match value {
        Value::None => Brine::None,
        Value::Bool(b) => Brine::Bool(*b),
        Value::Int(i) => Brine::Int(*i),
        Value::BigInt(b) => Brine::from(b.clone()),
        Value::Float(x) => Brine::Float(*x),
        Value::Complex(re, im) => Brine::Complex { re: *re, im: *im },
        Value::Str(s) => Brine::Str(s.clone()),
        Value::Bytes(b) => Brine::Bytes(b.clone()),
        Value::Tuple(items) => Brine::Tuple(items.iter().map(value_to_brine).collect::<Option<_>>()?),
        Value::FrozenSet(items) => Brine::FrozenSet(items.iter().map(value_to_brine).collect::<Option<_>>()?),
        Value::Slice(parts) => {
            let [start, stop, step] = &**parts;
            Brine::slice(value_to_brine(start)?, value_to_brine(stop)?, value_to_brine(step)?)
        }
        Value::Ellipsis => Brine::Ellipsis,
        Value::NotImplemented => Brine::NotImplemented,
        Value::List(_) | Value::Map(_) | Value::Ref(_) => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Unboxing
// ---------------------------------------------------------------------------------------------

/// RPyC's `_unbox`: a boxed brine value (`(label, payload)`) as a [`Value`], references resolved
/// through `unboxer`.
///
/// Errors: [`ProtocolError::UnknownLabel`] for an int label other than 1–4 (a label beyond
/// `u8` is [`ProtocolError::Malformed`]); [`ProtocolError::Malformed`] for anything that is not a
/// 2-tuple with an int label, a `LABEL_TUPLE` payload that is not a tuple, or an id_pack that is
/// not `(str, int, int)` with ids in `0..2^64`; [`ProtocolError::BadReference`] when `unboxer`
/// refuses a reference.
pub fn unbox<U: RefUnboxer>(boxed: Brine, unboxer: &U) -> Result<Value<U::Ref>, ProtocolError> {
    let (label, payload) = match boxed {
        Brine::Tuple(items) if items.len() == 2 => {
            let [label, payload] = <[Brine; 2]>::try_from(items).map_err(|_| malformed_box("a tuple"))?;
            (label, payload)
        }
        Brine::Tuple(items) => return Err(malformed_box(&format!("a tuple of {} items", items.len()))),
        other => return Err(malformed_box(other.type_name())),
    };
    let label = match label {
        Brine::Int(n) => n,
        Brine::BigInt(n) => {
            return Err(ProtocolError::Malformed(format!(
                "rpyc boxing label {} is not a LABEL_* number (1..=4)",
                short(&n)
            )))
        }
        other => {
            return Err(ProtocolError::Malformed(format!(
                "rpyc boxing label must be an int, found {}",
                other.type_name()
            )))
        }
    };
    let label = u8::try_from(label)
        .map_err(|_| ProtocolError::Malformed(format!("rpyc boxing label {label} is not a LABEL_* number (1..=4)")))?;
    match label {
        LABEL_VALUE => Ok(brine_to_value(payload)),
        LABEL_TUPLE => match payload {
            Brine::Tuple(items) => {
                Ok(Value::Tuple(items.into_iter().map(|item| unbox(item, unboxer)).collect::<Result<_, _>>()?))
            }
            other => Err(ProtocolError::Malformed(format!(
                "rpyc LABEL_TUPLE payload must be a tuple of boxed values, found {}",
                other.type_name()
            ))),
        },
        LABEL_LOCAL_REF | LABEL_REMOTE_REF => {
            let label = if label == LABEL_LOCAL_REF { RefLabel::Local } else { RefLabel::Remote };
            let (name, class_id, instance_id) = id_pack_parts(&payload)?;
            let id = IdPackRef { type_name: name, class_id, instance_id };
            unboxer.unbox_ref(label, id).map(Value::Ref).map_err(ProtocolError::BadReference)
        }
        other => Err(ProtocolError::UnknownLabel(other)),
    }
}

fn malformed_box(found: &str) -> ProtocolError {
    ProtocolError::Malformed(format!("rpyc boxed value must be a 2-tuple (label, payload), found {found}"))
}

/// Reads an id_pack `(str name, int class_id, int instance_id)` (see the module docs for the id
/// range). The value is the brine as it arrived (not boxed).
pub fn id_pack_from_brine(brine: &Brine) -> Result<IdPack, ProtocolError> {
    id_pack_parts(brine).map(|(type_name, class_id, instance_id)| IdPack {
        type_name: type_name.to_owned(),
        class_id,
        instance_id,
    })
}

/// An id_pack as brine: `(str name, int class_id, int instance_id)`, ids beyond `i64` as big
/// ints.
pub fn id_pack_to_brine(id: &IdPack) -> Brine {
    Brine::tuple([Brine::str(id.type_name.as_str()), Brine::from(id.class_id), Brine::from(id.instance_id)])
}

fn id_pack_parts(brine: &Brine) -> Result<(&str, u64, u64), ProtocolError> {
    let shape = || {
        ProtocolError::Malformed(format!(
            "rpyc id_pack must be a tuple (str name, int class_id, int instance_id), found {}",
            describe_shape(brine)
        ))
    };
    let [name, class_id, instance_id] = brine.as_tuple().ok_or_else(shape)? else {
        return Err(shape());
    };
    let name = name.as_str().ok_or_else(shape)?;
    Ok((
        name,
        id_to_u64(class_id, "class_id").ok_or_else(shape)??,
        id_to_u64(instance_id, "instance_id").ok_or_else(shape)??,
    ))
}

/// `None` when `brine` is not an int at all; `Some(Err)` for an int outside `0..2^64`.
fn id_to_u64(brine: &Brine, which: &str) -> Option<Result<u64, ProtocolError>> {
    let fits = match brine {
        Brine::Int(v) => u64::try_from(*v).ok(),
        Brine::BigInt(v) => v.to_u128().and_then(|v| u64::try_from(v).ok()),
        _ => return None,
    };
    Some(fits.ok_or_else(|| {
        let text = match brine {
            Brine::Int(v) => v.to_string(),
            Brine::BigInt(v) => short(v),
            _ => String::new(),
        };
        ProtocolError::Malformed(format!(
            "rpyc id_pack {which} {text} is beyond u64 (netref keeps object ids in 0..2^64)"
        ))
    }))
}

/// A big int's text for an error message, cut at 40 characters.
fn short(n: &BigInt) -> String {
    n.as_str().chars().take(40).collect()
}

fn describe_shape(brine: &Brine) -> String {
    match brine {
        Brine::Tuple(items) => describe_items(items),
        other => other.type_name().to_owned(),
    }
}

/// `(str, int, tuple)`: the types of a tuple's items, for error messages.
pub(super) fn describe_items(items: &[Brine]) -> String {
    let types: Vec<&str> = items.iter().map(Brine::type_name).collect();
    format!("({})", types.join(", "))
}

// ---------------------------------------------------------------------------------------------
// Boxing
// ---------------------------------------------------------------------------------------------

/// RPyC's `_box`: a [`Value`] as boxed brine, the shortest form stock writes.
///
/// `(1, v)` when `value` holds no reference, list or map; a tuple holding one becomes
/// `(2, (boxed, …))`; a reference becomes `(3 | 4, id_pack)` as `boxer` labels it; a list or map
/// goes to the [`RpycBoxer`] hook. Errors: what `boxer` refuses
/// ([`ProtocolError::BadReference`]), and a frozenset or slice holding a reference, list or map
/// (brine carries those by value only; [`ProtocolError::BadReference`]).
pub fn box_value<R, B: RpycBoxer<R>>(value: &Value<R>, boxer: &B) -> Result<Brine, ProtocolError> {
    if let Some(plain) = value_to_brine(value) {
        return Ok(labelled(LABEL_VALUE, plain));
    }
    match value {
        Value::Tuple(items) => box_tuple(items, boxer),
        Value::Ref(r) => box_ref(r, boxer),
        Value::List(items) => boxer.box_list(items),
        Value::Map(pairs) => boxer.box_map(pairs),
        other => Err(ProtocolError::BadReference(format!(
            "a {} holding a reference, list or map cannot be sent to an rpyc peer (brine carries it by value only)",
            other.kind()
        ))),
    }
}

/// The items of a tuple boxed as one tuple: `(1, (…))` when all are plain, `(2, (boxed, …))`
/// otherwise. (What a request's arguments are boxed as.)
pub fn box_tuple<R, B: RpycBoxer<R>>(items: &[Value<R>], boxer: &B) -> Result<Brine, ProtocolError> {
    if let Some(plain) = items.iter().map(value_to_brine).collect::<Option<Vec<_>>>() {
        return Ok(labelled(LABEL_VALUE, Brine::Tuple(plain)));
    }
    let boxed = items.iter().map(|item| box_value(item, boxer)).collect::<Result<Vec<_>, _>>()?;
    Ok(labelled(LABEL_TUPLE, Brine::Tuple(boxed)))
}

fn box_ref<R, B: RefBoxer<R>>(r: &R, boxer: &B) -> Result<Brine, ProtocolError> {
    let (label, id) = boxer.box_ref(r).map_err(ProtocolError::BadReference)?;
    Ok(box_ref_label(label, &id))
}

/// A boxed reference: `(LABEL_LOCAL_REF, id_pack)` for [`RefLabel::Local`],
/// `(LABEL_REMOTE_REF, id_pack)` for [`RefLabel::Remote`].
pub fn box_ref_label(label: RefLabel, id: &IdPack) -> Brine {
    let label = match label {
        RefLabel::Local => LABEL_LOCAL_REF,
        RefLabel::Remote => LABEL_REMOTE_REF,
    };
    labelled(label, id_pack_to_brine(id))
}

fn labelled(label: u8, payload: Brine) -> Brine {
    Brine::tuple([Brine::Int(i64::from(label)), payload])
}

// ---------------------------------------------------------------------------------------------
// Requests and replies
// ---------------------------------------------------------------------------------------------

/// A decoded request: its handler and its unboxed arguments (the items of the boxed tuple).
pub type Request<R> = (Handle, Vec<Value<R>>);

/// A request's `args`, `(handler, boxed_args)`, as the handler and its unboxed arguments.
///
/// Errors: [`ProtocolError::UnknownHandle`] for a handler int in `0..=255` that is no `HANDLE_*`
/// (stock answers `KeyError`), [`ProtocolError::Malformed`] for any other shape (a handler
/// beyond `u8`, boxed args that do not unbox to a tuple), and whatever [`unbox`] refuses. The
/// connection answers every one of them with an exception under the request's seq
/// ([`request_refusal`]).
pub fn decode_request<U: RefUnboxer>(args: Brine, unboxer: &U) -> Result<Request<U::Ref>, ProtocolError> {
    let [handler, boxed] = match args {
        Brine::Tuple(items) => <[Brine; 2]>::try_from(items).map_err(|items| {
            ProtocolError::Malformed(format!(
                "rpyc request args must be (handler, boxed_args), found a tuple of {} items",
                items.len()
            ))
        })?,
        other => {
            return Err(ProtocolError::Malformed(format!(
                "rpyc request args must be (handler, boxed_args), found {}",
                other.type_name()
            )))
        }
    };
    let handle = match handler {
        Brine::Int(n) => match u8::try_from(n) {
            Ok(n) => Handle::try_from(n)?,
            Err(_) => {
                return Err(ProtocolError::Malformed(format!("rpyc request handler {n} is not a HANDLE_* number")))
            }
        },
        Brine::BigInt(n) => {
            return Err(ProtocolError::Malformed(format!(
                "rpyc request handler {} is not a HANDLE_* number",
                short(&n)
            )))
        }
        other => {
            return Err(ProtocolError::Malformed(format!(
                "rpyc request handler must be an int, found {}",
                other.type_name()
            )))
        }
    };
    match unbox(boxed, unboxer)? {
        Value::Tuple(items) => Ok((handle, items)),
        other => {
            Err(ProtocolError::Malformed(format!("rpyc request arguments must box a tuple, found {}", other.kind())))
        }
    }
}

/// A request's `args`: `(handler, box(args))`, the arguments boxed as one tuple.
pub fn encode_request<R, B: RpycBoxer<R>>(
    handle: Handle,
    args: &[Value<R>],
    boxer: &B,
) -> Result<Brine, ProtocolError> {
    Ok(Brine::tuple([Brine::Int(i64::from(u8::from(handle))), box_tuple(args, boxer)?]))
}

/// A reply's `args` (the boxed result) as a [`Value`]; see [`unbox`].
pub fn decode_reply<U: RefUnboxer>(args: Brine, unboxer: &U) -> Result<Value<U::Ref>, ProtocolError> {
    unbox(args, unboxer)
}

/// A reply's `args`: the boxed result; see [`box_value`].
pub fn encode_reply<R, B: RpycBoxer<R>>(value: &Value<R>, boxer: &B) -> Result<Brine, ProtocolError> {
    box_value(value, boxer)
}

/// The exception to answer a request with when [`decode_request`] (or the request's own
/// checks) failed with `error`, the way stock answers it: an unknown handler is
/// `builtins.KeyError` with the number as its message (stock's `KeyError: 99`), a reference the
/// receiver does not know `builtins.KeyError` too (stock's `local_objects[id_pack]`), anything
/// else `builtins.ValueError` with the error's text. The traceback ends with the line stock
/// clients look for.
pub fn request_refusal(error: &ProtocolError) -> RemoteError {
    let (kind, message) = match error {
        ProtocolError::UnknownHandle(UnknownHandle(n)) => (kinds::KEY_ERROR, n.to_string()),
        ProtocolError::BadReference(why) => (kinds::KEY_ERROR, why.clone()),
        other => (kinds::VALUE_ERROR, other.to_string()),
    };
    let traceback = traceback_text("while decoding an rpyc request", kind, &message);
    RemoteError::new(kind, message).with_traceback(traceback)
}
