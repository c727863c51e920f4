//! The `rpyc_channel` fuzz target: see `netref_fuzz_targets::rpyc_channel`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netref_fuzz_targets::rpyc_channel(data));
