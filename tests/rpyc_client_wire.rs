//! Guards the RPyC client's requests in the shapes a stock rpyc 6 server reads, and its answers
//! to what a stock server sends it, against a scripted stock-shaped server on loopback that
//! decodes every frame with netref's RPyC codec: PICKLE names a pickle protocol, INSPECT names
//! its target by id_pack, CTXEXIT sends an exception class (INSPECTed and DELed by the server
//! like any class), `is_instance` is decided locally for one class id and is an INSTANCECHECK
//! `(class, id_pack)` otherwise, iteration ends at BUFFITER's empty tuple, a DEL for an object
//! the client never exported is answered with an exception, and a KeyError reads as Python
//! shows it.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt, TryStreamExt};
use netref::{
    dev::rpyc::{
        decode_message, encode_message,
        values::{decode_request, encode_exception, encode_reply, encode_request},
        BrineLimits, Message, MsgType, RpycChannelCodec,
    },
    kinds,
    prelude::*,
    Handle, IdPack, RefLabel, WireRef,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

/// Generous bound for anything that should happen promptly on loopback.
const PROMPTLY: Duration = Duration::from_secs(10);

/// The server's root, as it names it.
const ROOT: (&str, u64, u64) = ("stock.Service", 10, 11);

fn id((name, class_id, instance_id): (&str, u64, u64)) -> IdPack {
    IdPack { type_name: name.into(), class_id, instance_id }
}

/// One of the server's own objects, as it sends it (`REMOTE_REF` to the receiver).
fn own(object: (&str, u64, u64)) -> Value<WireRef> {
    Value::Ref(WireRef { label: RefLabel::Remote, id: id(object) })
}

/// One of the client's objects, named back to it (`LOCAL_REF` to the receiver).
fn theirs(id: IdPack) -> Value<WireRef> {
    Value::Ref(WireRef { label: RefLabel::Local, id })
}

/// A stock-shaped RPyC server: one accepted connection, every frame decoded.
struct Stock {
    frames: Framed<TcpStream, RpycChannelCodec>,
    next_seq: u64,
}

impl Stock {
    async fn accept(listener: &TcpListener) -> Stock {
        let (socket, _) = listener.accept().await.unwrap();
        Stock { frames: Framed::new(socket, RpycChannelCodec::new()), next_seq: 1 }
    }

    async fn recv(&mut self) -> Message {
        let payload = tokio::time::timeout(PROMPTLY, self.frames.next())
            .await
            .expect("the client sends promptly")
            .expect("the client keeps the connection open")
            .expect("the client's frame decodes");
        decode_message(&payload, &BrineLimits::default()).expect("the client's payload decodes")
    }

    /// The client's next request: `(seq, handler, arguments)`.
    async fn request(&mut self) -> (u64, Handle, Vec<Value<WireRef>>) {
        let message = self.recv().await;
        assert_eq!(message.msg, MsgType::Request, "expected a request, got {message:?}");
        let (handle, args) = decode_request(message.args, &netref::dev::WireRefs).expect("a well-formed request");
        (message.seq, handle, args)
    }

    /// The client's next request, which must be `handle`.
    async fn expect(&mut self, handle: Handle) -> (u64, Vec<Value<WireRef>>) {
        let (seq, got, args) = self.request().await;
        assert_eq!(got, handle, "args {args:?}");
        (seq, args)
    }

    async fn send(&mut self, msg: MsgType, seq: u64, args: &netref::dev::rpyc::Brine) {
        let mut payload = BytesMut::new();
        encode_message(msg, seq, args, &mut payload).unwrap();
        let payload: Bytes = payload.freeze();
        self.frames.send(payload).await.unwrap();
    }

    async fn reply(&mut self, seq: u64, value: Value<WireRef>) {
        let brine = encode_reply(&value, &netref::dev::WireRefs).unwrap();
        self.send(MsgType::Reply, seq, &brine).await;
    }

    async fn raise(&mut self, seq: u64, error: RemoteError) {
        self.send(MsgType::Exception, seq, &encode_exception(&error)).await;
    }

    /// Sends a request of its own and returns the client's answer (nothing else may come first).
    async fn ask(&mut self, handle: Handle, args: Vec<Value<WireRef>>) -> Message {
        let seq = self.next_seq;
        self.next_seq += 1;
        let brine = encode_request(handle, &args, &netref::dev::WireRefs).unwrap();
        self.send(MsgType::Request, seq, &brine).await;
        let answer = self.recv().await;
        assert_eq!(answer.seq, seq, "the answer carries the request's seq: {answer:?}");
        answer
    }

    /// Serves GETROOT with the root.
    async fn serve_root(&mut self) {
        let (seq, _) = self.expect(Handle::GetRoot).await;
        self.reply(seq, own(ROOT)).await;
    }
}

/// A listener, a stock-shaped server on it and a netref RPyC client connected to it.
async fn connected() -> (Stock, Peer) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stock, peer) = tokio::join!(Stock::accept(&listener), async { netref::connect(addr).rpyc().await.unwrap() });
    (stock, peer)
}

#[actix_rt::test]
async fn pickle_names_a_protocol_and_inspect_names_its_target_by_id_pack() {
    let (mut stock, peer) = connected().await;
    let client = async {
        let root = peer.root().await.unwrap();
        let pickled = root.obtain::<Value>().await.unwrap_err();
        assert!(pickled.as_remote().is_some_and(|e| e.is(kinds::VALUE_ERROR)), "{pickled:?}");
        assert_eq!(root.inspect().await.unwrap(), ["add"]);
    };
    let server = async {
        stock.serve_root().await;
        let (seq, args) = stock.expect(Handle::Pickle).await;
        // The stock handler is `_handle_pickle(obj, proto)`: without a protocol it fails with a
        // TypeError before it looks at `allow_pickle`.
        assert_eq!(args, [theirs(id(ROOT)), Value::Int(4)]);
        stock.raise(seq, RemoteError::new(kinds::VALUE_ERROR, "pickling is disabled")).await;
        let (seq, args) = stock.expect(Handle::Inspect).await;
        assert_eq!(args, [Value::Tuple(vec![Value::Str(ROOT.0.into()), Value::Int(10), Value::Int(11)])]);
        let methods = Value::Tuple(vec![Value::Tuple(vec![Value::Str("add".into()), Value::None])]);
        stock.reply(seq, methods).await;
    };
    tokio::join!(client, server);
}

#[actix_rt::test]
async fn ctxexit_sends_an_exception_class_the_server_can_inspect_and_release() {
    let (mut stock, peer) = connected().await;
    let client = async {
        let root = peer.root().await.unwrap();
        let error = RemoteError::new(kinds::VALUE_ERROR, "the block failed");
        assert!(!root.exit(Some(&error)).await.unwrap());
        // Serves the server's INSPECT and DEL of the class while this request waits.
        peer.ping("after").await.unwrap();
    };
    let server = async {
        stock.serve_root().await;
        let (seq, args) = stock.expect(Handle::CtxExit).await;
        let [target, Value::Ref(class)] = args.as_slice() else { panic!("CTXEXIT args: {args:?}") };
        assert_eq!(*target, theirs(id(ROOT)));
        assert_eq!(
            (class.label, class.id.type_name.as_str(), class.id.instance_id),
            (RefLabel::Remote, "builtins.ValueError", 0)
        );
        // What stock does with an unknown class: INSPECT it, run `__exit__`, DEL it.
        let class_pack =
            Value::Tuple(vec![Value::Str(class.id.type_name.clone()), Value::from(class.id.class_id), Value::Int(0)]);
        let inspected = stock.ask(Handle::Inspect, vec![class_pack]).await;
        assert_eq!(inspected.msg, MsgType::Reply, "{inspected:?}");
        let released = stock.ask(Handle::Del, vec![theirs(class.id.clone()), Value::Int(1)]).await;
        assert_eq!(released.msg, MsgType::Reply, "the class is released: {released:?}");
        stock.reply(seq, Value::Bool(false)).await;
        let (seq, args) = stock.expect(Handle::Ping).await;
        stock.reply(seq, args[0].clone()).await;
    };
    tokio::join!(client, server);
}

#[actix_rt::test]
async fn is_instance_is_local_for_one_class_id_and_an_instancecheck_otherwise() {
    let (mut stock, peer) = connected().await;
    const TOKEN_CLASS: (&str, u64, u64) = ("stock.Token", 20, 0);
    const TOKEN: (&str, u64, u64) = ("stock.Token", 20, 21);
    let client = async {
        let root = peer.root().await.unwrap();
        let class: NetRef = root.getattr("Token").await.unwrap();
        let token: NetRef = root.getattr("token").await.unwrap();
        assert!(token.is_instance(&class).await.unwrap(), "one class id: true, with no request");
        assert!(!root.is_instance(&class).await.unwrap());
    };
    let server = async {
        stock.serve_root().await;
        let (seq, _) = stock.expect(Handle::GetAttr).await;
        stock.reply(seq, own(TOKEN_CLASS)).await;
        let (seq, _) = stock.expect(Handle::GetAttr).await;
        stock.reply(seq, own(TOKEN)).await;
        // The next request is the root's check: the class is the target, the root goes by id_pack.
        let (seq, args) = stock.expect(Handle::InstanceCheck).await;
        let root_pack = Value::Tuple(vec![Value::Str(ROOT.0.into()), Value::Int(10), Value::Int(11)]);
        assert_eq!(args, [theirs(id(TOKEN_CLASS)), root_pack]);
        stock.reply(seq, Value::Bool(false)).await;
    };
    tokio::join!(client, server);
}

#[actix_rt::test]
async fn iteration_ends_at_an_empty_buffiter_chunk() {
    let (mut stock, peer) = connected().await;
    const ITERATOR: (&str, u64, u64) = ("builtins.list_iterator", 30, 31);
    let client = async {
        let root = peer.root().await.unwrap();
        let items: Vec<i64> = tokio::time::timeout(PROMPTLY, root.iter::<i64>().try_collect()).await.unwrap().unwrap();
        assert_eq!(items, [1, 2, 3]);
    };
    let server = async {
        stock.serve_root().await;
        let (seq, args) = stock.expect(Handle::CallAttr).await;
        assert_eq!(args[1], Value::Str("__iter__".into()));
        stock.reply(seq, own(ITERATOR)).await;
        let (seq, args) = stock.expect(Handle::BuffIter).await;
        assert_eq!(args, [theirs(id(ITERATOR)), Value::Int(10)]);
        stock.reply(seq, Value::Tuple(vec![Value::Int(1), Value::Int(2), Value::Int(3)])).await;
        // Stock's BUFFITER is `tuple(islice(obj, count))`: `()` at the end, not StopIteration.
        let (seq, _) = stock.expect(Handle::BuffIter).await;
        stock.reply(seq, Value::Tuple(Vec::new())).await;
    };
    tokio::join!(client, server);
}

#[actix_rt::test]
async fn a_del_for_an_object_never_exported_is_answered_with_an_exception() {
    let (mut stock, peer) = connected().await;
    let client = async {
        let root = peer.root().await.unwrap();
        let missing = root.call_method::<i64>("get", ("zz",)).await.unwrap_err();
        let missing = missing.as_remote().expect("a remote error");
        assert!(missing.is(kinds::KEY_ERROR) && missing.message == "'zz'", "{missing:?}");
        peer.ping("still here").await.unwrap();
    };
    let server = async {
        stock.serve_root().await;
        let (seq, _) = stock.expect(Handle::CallAttr).await;
        // What a stock server's INSTANCECHECK leaves behind: a DEL of the server's own list
        // (the client never had it), sent while the client waits.
        let bogus = id(("builtins.list", 40, 41));
        let answer = stock.ask(Handle::Del, vec![theirs(bogus), Value::Int(1)]).await;
        assert_eq!(answer.msg, MsgType::Exception, "{answer:?}");
        let mut error = RemoteError::new(kinds::KEY_ERROR, "");
        error.args = vec![netref::Data::Str("zz".into())];
        stock.raise(seq, error).await;
        let (seq, args) = stock.expect(Handle::Ping).await;
        stock.reply(seq, args[0].clone()).await;
    };
    tokio::join!(client, server);
}

#[actix_rt::test]
async fn two_classes_of_the_server_are_two_netrefs_each_released_by_its_id_pack() {
    let (mut stock, peer) = connected().await;
    // RPyC names every class with instance id 0: only the class id tells them apart.
    const A: (&str, u64, u64) = ("stock.A", 50, 0);
    const B: (&str, u64, u64) = ("stock.B", 60, 0);
    let client = async {
        let root = peer.root().await.unwrap();
        let a: NetRef = root.getattr("A").await.unwrap();
        let b: NetRef = root.getattr("B").await.unwrap();
        assert_ne!(a, b);
        assert_eq!((a.id_pack(), b.id_pack()), (id(A), id(B)));
        assert_eq!(b.call::<i64>(()).await.unwrap(), 2);
        drop((a, b));
        peer.ping("released").await.unwrap();
    };
    let server = async {
        stock.serve_root().await;
        let (seq, _) = stock.expect(Handle::GetAttr).await;
        stock.reply(seq, own(A)).await;
        let (seq, _) = stock.expect(Handle::GetAttr).await;
        stock.reply(seq, own(B)).await;
        let (seq, args) = stock.expect(Handle::Call).await;
        assert_eq!(args[0], theirs(id(B)), "the call goes to B");
        stock.reply(seq, Value::Int(2)).await;
        // The releases go out at the end of the connection's turn: around the ping.
        let mut released = Vec::new();
        while released.len() < 2 {
            let (seq, handle, args) = stock.request().await;
            match handle {
                Handle::Del => {
                    released.push(args);
                    stock.reply(seq, Value::None).await;
                }
                Handle::Ping => stock.reply(seq, args[0].clone()).await,
                other => panic!("unexpected {other:?} {args:?}"),
            }
        }
        released.sort_by_key(|args| format!("{args:?}"));
        assert_eq!(released, [vec![theirs(id(A)), Value::Int(1)], vec![theirs(id(B)), Value::Int(1)]]);
    };
    tokio::join!(client, server);
}
