//! A netref client using a Python rpyc 6.0.x service over RPyC's own wire: every member of the
//! interop service (`interop/rpyc/interop_service.py`, the contract's §2) as the contract's §5
//! describes, from Rust values.
//!
//! ```text
//! cargo run --example rpyc_interop_client -- HOST:PORT
//! ```
//!
//! against `interop_service.py` (a stock `ThreadedServer`) or `rpyc_interop_server`. It prints
//! one `PASS`/`FAIL` line per check, drops every proxy but the root, closes, and exits 0 only if
//! every check passed. The steps, each in a function of its own:
//!
//! * `values`: `contract`, `answer` (writes and deletes refused), `counter`, `add` (ints of any
//!   size, exact; floats; str; keyword arguments; a TypeError), `echo` of every brine type as
//!   Rust values (the echoed value keeps its exact type) and of a client object (it comes back as
//!   itself);
//! * `containers`: a list, a dict and a sequence by reference (`__len__`, `__getitem__` with
//!   negative indexes and slices, `__contains__`, `__iter__` + `__next__` to StopIteration,
//!   iteration in chunks), an iterator (`count_to`);
//! * `calls`: `call_me` with Rust callbacks (one calling back into the service, one raising),
//!   `fail` decoded as remote errors, `slow` with an expiry, callbacks and a blocking `wait`;
//! * `context`: the context manager without and with an error, and suppressing it;
//! * `objects`: Token's repr, str, hash, the six comparisons, `value`, the class `Token` and an
//!   instance check (after which a stock server sends a DEL for an object this side never
//!   exported), `is_token`, PICKLE refused, `tracked`/`tracked_again`/`released` (one DEL with
//!   count 2 after the alias).

use std::{process::ExitCode, time::Duration};

#[path = "rpyc_interop_client/calls.rs"]
mod calls;
#[path = "rpyc_interop_client/containers.rs"]
mod containers;
#[path = "rpyc_interop_client/objects.rs"]
mod objects;
#[path = "rpyc_interop_client/values.rs"]
mod values;

/// The record of every check: printed as it is made, failures kept for the summary.
#[derive(Debug, Default)]
pub(crate) struct Checks {
    failures: Vec<String>,
}

impl Checks {
    /// Records one check.
    pub(crate) fn check(&mut self, what: &str, ok: bool) {
        println!("{} {what}", if ok { "PASS" } else { "FAIL" });
        if !ok {
            self.failures.push(what.to_owned());
        }
    }

    /// Records one check, with what was seen when it failed.
    pub(crate) fn check_seen(&mut self, what: &str, ok: bool, seen: impl std::fmt::Debug) {
        if !ok {
            println!("     seen: {seen:?}");
        }
        self.check(what, ok);
    }

    /// Records that `outcome` is a remote error of `kind`.
    pub(crate) fn check_raises<T: std::fmt::Debug>(
        &mut self,
        what: &str,
        outcome: Result<T, netref::Error>,
        kind: &str,
    ) {
        let ok = matches!(&outcome, Err(e) if e.as_remote().is_some_and(|r| r.is(kind)));
        self.check_seen(what, ok, outcome);
    }
}

/// How long a check waits for something the server does on its own (a release).
pub(crate) const PROMPTLY: Duration = Duration::from_secs(3);

/// Ends a step: one that failed on an unexpected error fails alone, and the next one still runs.
fn step_done(name: &str, outcome: Result<(), netref::Error>, checks: &mut Checks) {
    if let Err(e) = outcome {
        checks.check(&format!("{name}: unexpected error: {e:#}"), false);
    }
}

async fn run(addr: &str) -> Result<Checks, netref::Error> {
    let mut checks = Checks::default();
    let peer = netref::connect(addr).rpyc().await?;
    let root = peer.root().await?;
    checks.check_seen("root is interop.InteropService", root.type_name() == "interop.InteropService", root.id_pack());
    println!("== values");
    let outcome = values::run(&root, &mut checks).await;
    step_done("values", outcome, &mut checks);
    println!("== containers");
    let outcome = containers::run(&root, &mut checks).await;
    step_done("containers", outcome, &mut checks);
    println!("== calls");
    let outcome = calls::run(&root, &mut checks).await;
    step_done("calls", outcome, &mut checks);
    println!("== context");
    let outcome = calls::context(&root, &mut checks).await;
    step_done("context", outcome, &mut checks);
    println!("== objects");
    let outcome = objects::run(&root, &peer, &mut checks).await;
    step_done("objects", outcome, &mut checks);
    // Every proxy but the root is dropped by now. The releases owed go out with the next
    // request; the ping's reply also says the server has taken them.
    println!("== close");
    peer.ping("done").await?;
    checks.check("the connection is still open at the end", !peer.is_closed());
    peer.close_within("done", PROMPTLY).await;
    Ok(checks)
}

#[actix_rt::main]
async fn main() -> ExitCode {
    let Some(addr) = std::env::args().nth(1) else {
        eprintln!("usage: rpyc_interop_client HOST:PORT");
        return ExitCode::from(2);
    };
    match run(&addr).await {
        Ok(checks) if checks.failures.is_empty() => {
            println!("all steps passed");
            ExitCode::SUCCESS
        }
        Ok(checks) => {
            println!("{} failed: {}", checks.failures.len(), checks.failures.join("; "));
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("FAIL error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
