//! Frame codec benchmark: encode + decode through [`FrameCodec`], no I/O.
//!
//! `cargo bench --bench codec` measures, for each frame, one `round_trip` (encode into a reused
//! `BytesMut`, then decode it back), and for diagnosis `encode` alone (into a cleared buffer) and
//! `decode` alone (from an already split-off body):
//! - `small_request`: `CALLATTR` on a `LOCAL_REF` target, name `"add"`, arguments `(1, 2)`
//!   (aim: ≤ 200 ns per round trip);
//! - `small_reply`: `Reply` with `Int(3)`;
//! - `bytes_1mib`: `Reply` with a 1 MiB byte string, reported in bytes/s (aim: ≥ 5 GB/s).

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkGroup, Criterion, Throughput};
use netref::{
    dev::{Frame, FrameCodec, WireRefs},
    Handle, IdPack, RefLabel, Value, WireRef,
};
use tokio_util::codec::{Decoder, Encoder};

fn small_request() -> Frame<WireRef> {
    let target = WireRef {
        label: RefLabel::Local,
        id: IdPack { type_name: "demo.Calculator".into(), class_id: 1, instance_id: 7 },
    };
    Frame::Request {
        seq: 42,
        handle: Handle::CallAttr,
        args: Value::Tuple(vec![
            Value::Ref(target),
            Value::Str("add".into()),
            Value::Tuple(vec![Value::Int(1), Value::Int(2)]),
            Value::None,
        ]),
        deadline: None,
    }
}

fn small_reply() -> Frame<WireRef> {
    Frame::Reply { seq: 42, value: Value::Int(3) }
}

fn bytes_reply(len: usize) -> Frame<WireRef> {
    Frame::Reply { seq: 42, value: Value::Bytes(Bytes::from(vec![0xab; len])) }
}

/// Encodes `frame` into `buf` (empty on entry and on exit) and decodes it back.
fn round_trip(codec: &mut FrameCodec, frame: &Frame<WireRef>, buf: &mut BytesMut) -> Frame<WireRef> {
    codec.encode(frame, buf).expect("encodes");
    codec.decode(buf).expect("decodes").expect("a complete frame")
}

fn bench_frame<M: criterion::measurement::Measurement>(group: &mut BenchmarkGroup<'_, M>, frame: &Frame<WireRef>) {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    // Sanity check, and warm the buffer to its working size.
    assert_eq!(round_trip(&mut codec, frame, &mut buf), *frame);
    assert!(buf.is_empty());

    group.bench_function("round_trip", |b| b.iter(|| round_trip(&mut codec, black_box(frame), &mut buf)));

    group.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            codec.encode(black_box(frame), &mut buf).expect("encodes");
        })
    });
    buf.clear();

    let mut wire = BytesMut::new();
    codec.encode(frame, &mut wire).expect("encodes");
    let body = codec.decode_body(&mut wire).expect("a valid header").expect("a complete frame");
    group
        .bench_function("decode", |b| b.iter(|| codec.decode_body_with(black_box(&body), &WireRefs).expect("decodes")));
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("small_request");
    bench_frame(&mut group, &small_request());
    group.finish();

    let mut group = c.benchmark_group("small_reply");
    bench_frame(&mut group, &small_reply());
    group.finish();

    let len = 1 << 20;
    let mut group = c.benchmark_group("bytes_1mib");
    group.throughput(Throughput::Bytes(len as u64));
    bench_frame(&mut group, &bytes_reply(len));
    group.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, minus the undocumented public function
// they would add (the crate denies missing docs under clippy).
fn main() {
    let mut c = Criterion::default().configure_from_args();
    codec(&mut c);
    c.final_summary();
}
