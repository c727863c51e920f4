//! The RPyC 6 wire dialect: a session speaking stock Python rpyc 6.0.x's own protocol (channel
//! framing, `u8 msg` + `brine((seq, args))`, RPyC's boxing and vinegar), built on the pure codec
//! in [`crate::protocol::rpyc`].
//!
//! RPyC's wire has no handshake, no cancel frame and no batched releases: a connection is ready
//! at once, an expired request's late reply is dropped locally, and each release is a numbered
//! `HANDLE_DEL` request carrying the peer object's full id_pack (kept here, per imported object,
//! as its `REMOTE_REF`s are unboxed) and the receipt count. One-way frames (`Notify`, `Close`)
//! go as ordinary requests numbered from a range of their own, whose replies the session drops.
//!
//! Where RPyC's argument or reply shapes differ from netref's object model, this adapter
//! translates at the edge: kwargs as tuples of pairs, CTXEXIT's exception class, OLDSLICING as
//! `__getitem__(slice)`, DIR and INSPECT answered as tuples, an exhausted BUFFITER as `()`.
//!
//! It must never execute, import or unpickle anything a peer sends (`HANDLE_PICKLE` is refused
//! with RPyC's `ValueError` before it reaches an object), never panic on a peer's bytes, and
//! never allocate past the codec's limits. A request it cannot decode but whose seq it read
//! is answered with an exception (as stock does); anything worse ends only this connection.

use std::{borrow::Cow, cell::RefCell, collections::HashMap};

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

use super::{Dialect, Framer, Incoming, Releases, WireTraits};
use crate::{
    error::{kinds, traceback_text, RemoteError},
    protocol::{
        rpyc::{
            decode_message,
            values::{
                decode_exception, decode_reply, decode_request, encode_exception, encode_reply, encode_request,
                id_pack_to_brine, request_refusal, RpycBoxer,
            },
            Brine, BrineLimits, MsgType, RpycChannelCodec,
        },
        IdPackRef, Outbox, RefBoxer, RefUnboxer, LABEL_LOCAL_REF, LABEL_TUPLE, LABEL_VALUE,
    },
    session::boxing::{Boxer, Unboxer},
    Frame, Handle, IdPack, NetRef, Object, ProtocolError, RefLabel, Value,
};

/// The first seq of the requests sent for one-way frames (`Notify`, `Close`): far above what
/// the session's own counter reaches, so their replies never settle a real request.
const ONE_WAY_SEQ_BASE: u64 = 1 << 62;

/// Marks the key a peer's class is tracked by (its class id with this bit set): CPython's ids
/// are addresses, far below it, so no instance of the peer is tracked under the same number.
const CLASS_KEY_BIT: u64 = 1 << 63;

/// The pickle protocol a PICKLE request names when the caller gave none (Python's
/// `pickle.DEFAULT_PROTOCOL` since 3.8). A stock server needs the argument even to refuse; one
/// that allows pickling answers with pickle bytes, which netref hands over as bytes and never
/// unpickles.
const PICKLE_PROTOCOL: i64 = 4;

/// The RPyC dialect of one connection.
pub(crate) struct RpycDialect {
    codec: RpycChannelCodec,
    limits: BrineLimits,
    /// The id_packs of the peer's objects this side imported, by instance id: what a DEL names.
    imported: HashMap<u64, IdPack>,
    /// The handlers of the peer's requests whose reply RPyC shapes differently, by seq.
    serving: HashMap<u64, Handle>,
    /// The next seq for a one-way request.
    one_way_seq: u64,
    /// This side's class objects as sent, by class id: RPyC names a class `(name, cid, 0)`, and
    /// the peer's `LOCAL_REF`s to one come back with instance id 0.
    classes: RefCell<HashMap<u64, u64>>,
    /// The exception classes this side's CTXEXIT requests named, by kind: one class object per
    /// kind, as Python has one class per exception type (each send is one more export of it,
    /// which the peer's DEL gives back).
    exception_classes: HashMap<String, Object>,
}

impl RpycDialect {
    /// A dialect reading and writing payloads of up to `max_frame_len` bytes.
    pub(crate) fn new(max_frame_len: usize) -> Self {
        RpycDialect {
            codec: RpycChannelCodec::with_max_frame_len(max_frame_len),
            limits: BrineLimits::default(),
            imported: HashMap::new(),
            serving: HashMap::new(),
            one_way_seq: ONE_WAY_SEQ_BASE,
            classes: RefCell::default(),
            exception_classes: HashMap::new(),
        }
    }

    fn next_one_way(&mut self) -> u64 {
        let seq = self.one_way_seq;
        self.one_way_seq = self.one_way_seq.checked_add(1).unwrap_or(ONE_WAY_SEQ_BASE);
        seq
    }

    fn message(&self, msg: MsgType, seq: u64, args: &Brine, out: &mut Outbox) -> Result<(), ProtocolError> {
        self.codec.encode_message(msg, seq, args, out.tail_mut())
    }

    fn request(
        &mut self,
        seq: u64,
        handle: Handle,
        args: &Value<NetRef>,
        boxer: &Boxer<'_>,
        out: &mut Outbox,
    ) -> Result<(), ProtocolError> {
        let mut items = outgoing_args(handle, args);
        match handle {
            // RPyC's CTXEXIT carries the exception's class (stock: `raise exc` on the serving
            // side); netref's `(kind, message)` becomes a class object named `kind`, which goes
            // as `(kind, class_id, 0)`. The message has no place on RPyC's wire.
            Handle::CtxExit => {
                if let Some(exc) = items.get_mut(1) {
                    if let Some(class) = self.exception_class(exc) {
                        *exc = Value::Ref(NetRef::from(class));
                    }
                }
            }
            // RPyC's INSPECT names its target by id_pack, by value.
            Handle::Inspect => {
                if let Some(Value::Ref(r)) = items.first() {
                    let id = r.id_pack();
                    items[0] = Value::Tuple(vec![
                        Value::Str(id.type_name),
                        Value::from(id.class_id),
                        Value::from(id.instance_id),
                    ]);
                }
            }
            Handle::Pickle if items.len() == 1 => items.push(Value::Int(PICKLE_PROTOCOL)),
            _ => {}
        }
        let brine = encode_request(handle, &items, &Refs { boxer, classes: &self.classes })?;
        self.message(MsgType::Request, seq, &brine, out)
    }
}

impl RpycDialect {
    /// The class object a CTXEXIT names for the error `(kind, message)`, made on first use.
    fn exception_class(&mut self, error: &Value<NetRef>) -> Option<Object> {
        let Value::Tuple(parts) = error else { return None };
        let [Value::Str(kind), _] = parts.as_slice() else { return None };
        let class = self
            .exception_classes
            .entry(kind.clone())
            .or_insert_with(|| Object::builder(kind.as_str()).instance_of("builtins.type").build());
        Some(class.clone())
    }
}

/// The read side: RPyC's channel framing, compressed payloads inflated within the limit.
struct RpycFramer(RpycChannelCodec);

impl Framer for RpycFramer {
    fn body(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        self.0.decode(src)
    }
}

/// The session's boxer as RPyC's: lists and maps are refused by the default hook (RPyC passes
/// them by reference; a service returns an object instead). An object declared an instance of
/// `builtins.type` (see [`ObjectBuilder::instance_of`](crate::ObjectBuilder::instance_of)) is
/// a class: it goes as `(name, class_id, 0)`, as RPyC names classes.
struct Refs<'a, 'b> {
    boxer: &'a Boxer<'b>,
    classes: &'a RefCell<HashMap<u64, u64>>,
}

impl RefBoxer<NetRef> for Refs<'_, '_> {
    fn box_ref<'r>(&self, r: &'r NetRef) -> Result<(RefLabel, Cow<'r, IdPack>), String> {
        let (label, id) = self.boxer.box_ref(r)?;
        if label == RefLabel::Remote && r.as_local().is_some_and(is_class) {
            self.classes.borrow_mut().insert(id.class_id, id.instance_id);
            return Ok((label, Cow::Owned(IdPack { instance_id: 0, ..id.into_owned() })));
        }
        Ok((label, id))
    }
}

/// Whether `object` is a class on RPyC's wire.
fn is_class(object: &Object) -> bool {
    object.inner.instance_of.iter().any(|t| t == "builtins.type")
}

impl RpycBoxer<NetRef> for Refs<'_, '_> {}

/// The session's unboxer, noting the id_pack of every peer object imported (for its DEL).
struct Recording<'a, 'u> {
    inner: &'a Unboxer<'u>,
    imported: RefCell<&'a mut HashMap<u64, IdPack>>,
    classes: &'a RefCell<HashMap<u64, u64>>,
}

impl Recording<'_, '_> {
    /// The instance id this side's object `(class_id, instance_id)` is exported under: a
    /// class sent as instance 0 has its own.
    fn local_id(&self, class_id: u64, instance_id: u64) -> u64 {
        if instance_id == 0 {
            if let Some(&id) = self.classes.borrow().get(&class_id) {
                return id;
            }
        }
        instance_id
    }
}

impl RefUnboxer for Recording<'_, '_> {
    type Ref = NetRef;

    fn unbox_ref(&self, label: RefLabel, mut id: IdPackRef<'_>) -> Result<NetRef, String> {
        if label == RefLabel::Local {
            id.instance_id = self.local_id(id.class_id, id.instance_id);
            return self.inner.unbox_ref(label, id);
        }
        // Every class of the peer has instance id 0: each is tracked by its class id instead,
        // so two classes are two netrefs (and two DELs), as two proxies are to stock.
        let (key, r) = if id.instance_id == 0 {
            let key = id.class_id | CLASS_KEY_BIT;
            (key, self.inner.import_keyed(key, id))
        } else {
            (id.instance_id, self.inner.unbox_ref(label, id)?)
        };
        self.imported.borrow_mut().entry(key).or_insert_with(|| id.to_id_pack());
        Ok(r)
    }
}

/// A request's items in RPyC's shapes: CALL's and CALLATTR's positional arguments as a tuple
/// and their keyword arguments as a tuple of `(name, value)` pairs (netref sends `None` or a map);
/// INSPECT's target as its id_pack by value, as stock sends it (a stock server looks the
/// id_pack up in its objects; a reference there would be unboxed to the object itself).
fn outgoing_args(handle: Handle, args: &Value<NetRef>) -> Vec<Value<NetRef>> {
    let mut items = match args {
        Value::Tuple(items) => items.clone(),
        other => vec![other.clone()],
    };
    let (pos, kw) = match handle {
        Handle::Call => (1, 2),
        Handle::CallAttr => (2, 3),
        Handle::Inspect => {
            if let Some(Value::Ref(r)) = items.first() {
                let id = r.id_pack();
                items[0] =
                    Value::Tuple(vec![Value::Str(id.type_name), Value::from(id.class_id), Value::from(id.instance_id)]);
            }
            return items;
        }
        _ => return items,
    };
    if let Some(v) = items.get_mut(pos) {
        match v {
            Value::None => *v = Value::Tuple(Vec::new()),
            Value::List(list) => *v = Value::Tuple(std::mem::take(list)),
            _ => {}
        }
    }
    if items.len() == kw {
        items.push(Value::Tuple(Vec::new()));
    }
    if let Some(v) = items.get_mut(kw) {
        match v {
            Value::None => *v = Value::Tuple(Vec::new()),
            Value::Map(pairs) => {
                *v = Value::Tuple(std::mem::take(pairs).into_iter().map(|(k, v)| Value::Tuple(vec![k, v])).collect())
            }
            _ => {}
        }
    }
    items
}

/// RPyC's keyword arguments (a tuple of `(name, value)` pairs) as the map netref's objects read.
fn kwargs_to_map(v: &mut Value<NetRef>) -> Result<(), ProtocolError> {
    if let Value::Tuple(pairs) = v {
        let mut map = Vec::with_capacity(pairs.len());
        for pair in std::mem::take(pairs) {
            match pair {
                Value::Tuple(kv) if kv.len() == 2 => {
                    let [k, v] = <[Value<NetRef>; 2]>::try_from(kv)
                        .map_err(|_| ProtocolError::Malformed("rpyc kwargs pair".into()))?;
                    map.push((k, v));
                }
                other => {
                    return Err(ProtocolError::Malformed(format!(
                        "rpyc keyword arguments must be (name, value) pairs, found a {}",
                        other.kind()
                    )))
                }
            }
        }
        *v = Value::Map(map);
    }
    Ok(())
}

/// An id_pack's id (an int in `0..2^64`, a big int beyond `i64`).
fn id_of(v: &Value<NetRef>) -> Option<u64> {
    match v {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BigInt(n) => n.to_u128().and_then(|n| u64::try_from(n).ok()),
        _ => None,
    }
}

/// The error RPyC answers a PICKLE request with.
fn pickle_refusal() -> RemoteError {
    let message = "pickling is disabled";
    RemoteError::new(kinds::VALUE_ERROR, message).with_traceback(traceback_text(
        "while serving an rpyc PICKLE request",
        kinds::VALUE_ERROR,
        message,
    ))
}

/// A list (DIR's, INSPECT's) as the tuple RPyC's client expects.
fn list_to_tuple(value: &Value<NetRef>) -> Option<Value<NetRef>> {
    match value {
        Value::List(items) => Some(Value::Tuple(items.clone())),
        _ => None,
    }
}

impl Dialect for RpycDialect {
    fn name(&self) -> &'static str {
        "rpyc"
    }

    fn traits(&self) -> WireTraits {
        WireTraits { handshake: false, cancel: false, releases: Releases::Requests }
    }

    fn framer(&self) -> Box<dyn Framer> {
        Box::new(RpycFramer(self.codec.clone()))
    }

    fn max_frame_len(&self) -> usize {
        self.codec.max_frame_len()
    }

    fn encode(
        &mut self,
        frame: &Frame<NetRef>,
        boxer: &Boxer<'_>,
        out: &mut Outbox,
        _peer_max: Option<usize>,
    ) -> Result<(), ProtocolError> {
        match frame {
            Frame::Request { seq, handle, args, .. } => self.request(*seq, *handle, args, boxer, out),
            Frame::Notify { handle, args } => {
                let seq = self.next_one_way();
                self.request(seq, *handle, args, boxer, out)
            }
            Frame::Reply { seq, value } => {
                let shaped = match self.serving.remove(seq) {
                    Some(Handle::Dir | Handle::Inspect) => list_to_tuple(value),
                    _ => None,
                };
                let brine = encode_reply(shaped.as_ref().unwrap_or(value), &Refs { boxer, classes: &self.classes })?;
                self.message(MsgType::Reply, *seq, &brine, out)
            }
            Frame::Exception { seq, error } => {
                if self.serving.remove(seq) == Some(Handle::BuffIter) && error.is_stop_iteration() {
                    // RPyC's BUFFITER answers an exhausted iterator with an empty tuple.
                    let brine = Brine::tuple([Brine::Int(i64::from(LABEL_VALUE)), Brine::tuple([])]);
                    return self.message(MsgType::Reply, *seq, &brine, out);
                }
                self.message(MsgType::Exception, *seq, &encode_exception(error), out)
            }
            Frame::Close { .. } => {
                // What stock does on close: a CLOSE request, whose reply nobody waits for.
                let seq = self.next_one_way();
                self.request(seq, Handle::Close, &Value::Tuple(Vec::new()), boxer, out)
            }
            Frame::Hello(_) | Frame::Cancel { .. } | Frame::Release { .. } => {
                Err(ProtocolError::Unexpected(format!("the rpyc dialect has no {} frame", frame.kind())))
            }
        }
    }

    fn encode_release_request(
        &mut self,
        seq: u64,
        instance_id: u64,
        count: u64,
        out: &mut Outbox,
    ) -> Result<(), ProtocolError> {
        // The peer keys its objects by the whole id_pack; one never seen is named by id only
        // (the peer answers that DEL with an exception, which the session drops).
        let id =
            self.imported.remove(&instance_id).unwrap_or(IdPack { type_name: String::new(), class_id: 0, instance_id });
        let target = Brine::tuple([Brine::Int(i64::from(LABEL_LOCAL_REF)), id_pack_to_brine(&id)]);
        let count = Brine::tuple([Brine::Int(i64::from(LABEL_VALUE)), Brine::from(count)]);
        let args = Brine::tuple([Brine::Int(i64::from(LABEL_TUPLE)), Brine::tuple([target, count])]);
        let brine = Brine::tuple([Brine::Int(i64::from(u8::from(Handle::Del))), args]);
        self.message(MsgType::Request, seq, &brine, out)
    }

    fn decode<'b>(
        &mut self,
        body: &'b Bytes,
        unboxer: &Unboxer<'_>,
        _greeted: bool,
    ) -> Result<Incoming<'b>, ProtocolError> {
        let message = decode_message(body, &self.limits)?;
        let seq = message.seq;
        let unboxer = Recording { inner: unboxer, imported: RefCell::new(&mut self.imported), classes: &self.classes };
        match message.msg {
            MsgType::Reply => Ok(Incoming::Frame(Frame::Reply { seq, value: decode_reply(message.args, &unboxer)? })),
            MsgType::Exception => Ok(Incoming::Frame(Frame::Exception { seq, error: decode_exception(message.args)? })),
            MsgType::Request => {
                let (handle, mut items) = match decode_request(message.args, &unboxer) {
                    Ok(request) => request,
                    Err(e) => return Ok(Incoming::Refuse { seq, error: request_refusal(&e) }),
                };
                let shaped = match handle {
                    // The peer is closing: stock waits for no reply and closes its socket, so
                    // this side closes as on the native wire's Close (running work dropped).
                    Handle::Close => {
                        let reason = "the rpyc peer sent CLOSE (rpyc sends no reason)".to_owned();
                        return Ok(Incoming::Frame(Frame::Close { reason }));
                    }
                    Handle::Pickle => return Ok(Incoming::Refuse { seq, error: pickle_refusal() }),
                    Handle::Call => items.get_mut(2).map_or(Ok(()), kwargs_to_map),
                    Handle::CallAttr => items.get_mut(3).map_or(Ok(()), kwargs_to_map),
                    Handle::CtxExit => {
                        // RPyC sends the exception's class (a reference to the peer's class);
                        // netref's context managers take (kind, message).
                        if let Some(Value::Ref(r)) = items.get(1) {
                            let kind = r.id_pack().type_name;
                            items[1] = Value::Tuple(vec![Value::Str(kind), Value::Str(String::new())]);
                        }
                        Ok(())
                    }
                    Handle::Inspect => {
                        // RPyC's INSPECT names its target by id_pack, by value.
                        let target = match items.first() {
                            Some(Value::Tuple(parts)) => match parts.as_slice() {
                                [Value::Str(_), cid, iid] => match (id_of(cid), id_of(iid)) {
                                    (Some(cid), Some(iid)) => {
                                        unboxer.inner.local_object(cid, unboxer.local_id(cid, iid)).cloned()
                                    }
                                    _ => None,
                                },
                                _ => None,
                            },
                            Some(Value::Ref(r)) => r.as_local().cloned(),
                            _ => None,
                        };
                        match target {
                            Some(object) => {
                                items = vec![Value::Ref(NetRef::from(object))];
                                self.serving.insert(seq, handle);
                                Ok(())
                            }
                            None => Err(ProtocolError::BadReference(
                                "INSPECT of an object this side has not exported".into(),
                            )),
                        }
                    }
                    Handle::Dir | Handle::BuffIter => {
                        self.serving.insert(seq, handle);
                        Ok(())
                    }
                    _ => Ok(()),
                };
                if let Err(e) = shaped {
                    return Ok(Incoming::Refuse { seq, error: request_refusal(&e) });
                }
                if handle == Handle::OldSlicing {
                    // (obj, attempt, fallback, start, stop, args): obj[start:stop].
                    let mut it = items.into_iter();
                    let (Some(obj), _, _, Some(start), Some(stop)) =
                        (it.next(), it.next(), it.next(), it.next(), it.next())
                    else {
                        let e =
                            ProtocolError::Malformed("OLDSLICING needs (obj, attempt, fallback, start, stop)".into());
                        return Ok(Incoming::Refuse { seq, error: request_refusal(&e) });
                    };
                    let slice = Value::Slice(Box::new([start, stop, Value::None]));
                    let args = vec![obj, Value::Str("__getitem__".into()), Value::Tuple(vec![slice]), Value::None];
                    return Ok(Incoming::Frame(Frame::Request {
                        seq,
                        handle: Handle::CallAttr,
                        args: Value::Tuple(args),
                        deadline: None,
                    }));
                }
                Ok(Incoming::Frame(Frame::Request { seq, handle, args: Value::Tuple(items), deadline: None }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_names_its_target_by_id_pack_as_stock_does() {
        let object = Object::builder("demo.Thing").method("go", || 1).build();
        let id = object.id_pack();
        let items = outgoing_args(Handle::Inspect, &Value::Tuple(vec![Value::Ref(NetRef::from(object))]));
        let expected: Value<NetRef> =
            Value::Tuple(vec![Value::Str(id.type_name), Value::from(id.class_id), Value::from(id.instance_id)]);
        assert_eq!(items, vec![expected]);
    }

    #[test]
    fn call_arguments_take_rpyc_shapes() {
        let target = Value::Ref(NetRef::from(Object::function(|x: i64| x)));
        let kwargs = Value::Map(vec![(Value::Str("k".into()), Value::Int(1))]);
        let items = outgoing_args(Handle::Call, &Value::Tuple(vec![target.clone(), Value::None, kwargs]));
        let pair = Value::Tuple(vec![Value::Str("k".into()), Value::Int(1)]);
        assert_eq!(items, vec![target, Value::Tuple(Vec::new()), Value::Tuple(vec![pair])]);
    }
}
