//! Guards every input the fuzz targets were ever seeded with or crashed on: each file of
//! `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/` runs through the same body as the
//! fuzz target of that name, so a crash committed there stays a regression test. Also checks
//! that every corpus directory names a target and every target has its seeds.

use std::{
    fs,
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
};

use netref_fuzz_targets::{seeds::seeds, target, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files under `fuzz/<kind>/<target>/`, by target, sorted.
fn inputs(kind: &str) -> Vec<(String, PathBuf)> {
    let Ok(dirs) = fs::read_dir(fuzz_dir().join(kind)) else { return Vec::new() };
    let mut out = Vec::new();
    for dir in dirs {
        let dir = dir.expect("a readable directory entry").path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        for file in fs::read_dir(&dir).expect("a readable corpus directory") {
            let file = file.expect("a readable file entry").path();
            if file.is_file() {
                out.push((name.clone(), file));
            }
        }
    }
    out.sort();
    out
}

/// Runs each input through its target, collecting the failures (all of them, not the first).
fn replay(kind: &str) -> usize {
    let inputs = inputs(kind);
    let mut failures = Vec::new();
    for (name, file) in &inputs {
        let Some(t) = target(name) else {
            failures.push(format!("{}: no target named {name}", file.display()));
            continue;
        };
        let data = fs::read(file).expect("a readable corpus file");
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (t.run)(&data))) {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            failures.push(format!("{}: {why}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{} of {} inputs failed:\n{}", failures.len(), inputs.len(), failures.join("\n"));
    inputs.len()
}

#[test]
fn every_corpus_file_runs_clean_through_its_target() {
    let replayed = replay("corpus");
    assert!(replayed >= TARGETS.len(), "only {replayed} corpus files: the seeds are missing");
}

#[test]
fn every_committed_artifact_runs_clean_through_its_target() {
    replay("artifacts");
}

#[test]
fn the_committed_seeds_are_what_the_encoders_write_now() {
    for seed in seeds() {
        let path = fuzz_dir().join("corpus").join(seed.target).join(format!("seed-{}", seed.name));
        let committed = fs::read(&path).unwrap_or_default();
        assert!(
            committed == seed.bytes,
            "{} is missing or stale: run `cargo run -p netref-fuzz-targets --bin write-seeds`",
            path.display()
        );
    }
}

#[test]
fn every_target_has_seeds_and_a_fuzz_binary() {
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for t in TARGETS {
        assert!(seeds().iter().any(|s| s.target == t.name), "{} has no seed", t.name);
        assert!(manifest.contains(&format!("name = \"{}\"", t.name)), "fuzz/Cargo.toml has no binary {}", t.name);
        let source = fuzz_dir().join("fuzz_targets").join(format!("{}.rs", t.name));
        assert!(source.exists(), "{} is missing", source.display());
    }
}
