//! Writes the seed corpus (`netref_fuzz_targets::seeds`) to `fuzz/corpus/<target>/seed-<name>`,
//! replacing the seeds written before and leaving every other corpus file alone.

use std::{fs, path::Path};

fn main() -> std::io::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    for seed in netref_fuzz_targets::seeds::seeds() {
        let dir = corpus.join(seed.target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(format!("seed-{}", seed.name)), &seed.bytes)?;
    }
    println!("seeds written under {}", corpus.display());
    Ok(())
}
