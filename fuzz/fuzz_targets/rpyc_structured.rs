//! The `rpyc_structured` fuzz target: see `netref_fuzz_targets::rpyc_structured`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netref_fuzz_targets::rpyc_structured(data));
