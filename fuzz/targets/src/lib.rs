//! The bodies of netref's fuzz targets, one function per target taking the fuzzer's bytes and
//! panicking when netref breaks one of its promises about a peer's bytes: no panic, no hang,
//! no allocation beyond the limits, a clear end to a connection that received garbage, and
//! codecs whose decode of an encode is the identity.
//!
//! The cargo-fuzz crate (`fuzz/`, outside the workspace: it needs nightly and libFuzzer) runs
//! each body under libFuzzer; this crate's `tests/corpus_replay.rs` runs every committed corpus
//! and artifact file through the same bodies on every `cargo test`, so an input that once broke
//! netref stays a regression test. [`TARGETS`] names them all; `fuzz/Cargo.toml` has one binary
//! per entry.
//!
//! This crate must never be a dependency of netref or of anything a user builds: it turns on
//! netref's hidden `fuzzing` feature, whose hooks are not part of the API.

mod native;
mod peer;
mod rpyc;
pub mod seeds;
mod service;
mod structured;

/// One fuzz target: its name (the cargo-fuzz binary and the `fuzz/corpus/` directory) and its body.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The target's name.
    pub name: &'static str,
    /// Runs one input; panics on a broken promise.
    pub run: fn(&[u8]),
}

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    Target { name: "native_frame", run: native_frame },
    Target { name: "native_session", run: native_session },
    Target { name: "native_structured", run: native_structured },
    Target { name: "rpyc_channel", run: rpyc_channel },
    Target { name: "rpyc_brine", run: rpyc_brine },
    Target { name: "rpyc_session", run: rpyc_session },
    Target { name: "rpyc_structured", run: rpyc_structured },
];

/// The target named `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.name == name)
}

/// The native frame codec: any bytes decode to frames or a clean error, the same whether they
/// arrive at once or in two pieces; each frame that decodes encodes to bytes that decode to
/// the same frame and encode to the same bytes.
pub fn native_frame(data: &[u8]) {
    native::frame_codec(data);
}

/// A native session (the serving side) fed the peer's `Hello`, then `data` as read off the
/// socket, then the clock moved past every timeout and the end of the stream.
pub fn native_session(data: &[u8]) {
    native::session_bytes(data);
}

/// A native session fed frames built from `data` (see `structured`): requests on the objects
/// it really exported, references of the peer's own, replies to its callbacks, cancels,
/// releases, time passing.
pub fn native_structured(data: &[u8]) {
    structured::run(peer::WireKind::Native, data);
}

/// RPyC's channel framing: frames with plain or zlib payloads inflate within the frame limit,
/// the same at once or in two pieces, and each payload re-frames (plain and compressed) to
/// itself.
pub fn rpyc_channel(data: &[u8]) {
    rpyc::channel(data);
}

/// Brine and RPyC's message layout: any bytes load to a value or a clean error; a value that
/// loads dumps to bytes that load to the same value and dump to the same bytes.
pub fn rpyc_brine(data: &[u8]) {
    rpyc::brine(data);
}

/// An RPyC session (the serving side), after a stock client's first GETROOT, fed `data` as
/// read off the socket, then the clock moved past every timeout and the end of the stream.
pub fn rpyc_session(data: &[u8]) {
    rpyc::session_bytes(data);
}

/// An RPyC session fed messages built from `data`, as `native_structured` on RPyC's wire.
pub fn rpyc_structured(data: &[u8]) {
    structured::run(peer::WireKind::Rpyc, data);
}
