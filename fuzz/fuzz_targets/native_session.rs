//! The `native_session` fuzz target: see `netref_fuzz_targets::native_session`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netref_fuzz_targets::native_session(data));
