//! Runs the whole comparison with tiny counts against real server processes (the `compare`
//! binary in its server roles), and checks that every figure was measured and is sane.

use std::{path::Path, time::Instant};

use netref_compare::{Plan, Systems};

#[test]
fn whole_program_with_tiny_counts() {
    let started = Instant::now();
    let plan = Plan::tiny();
    let report = netref_compare::run(&plan, Systems::ALL, Path::new(env!("CARGO_BIN_EXE_compare")), |_| {})
        .expect("the comparison runs");
    let text = report.render();
    println!("{text}");

    let expected = [
        (
            "floor",
            &["sync", "sync_task", "sync_interleaved", "sync_p50", "sync_p99", "pipelined", "echo_1mib", "connect"][..],
        ),
        ("actor_floor", &["sync", "sync_p50", "sync_p99", "connect"][..]),
        (
            "tarpc",
            &["sync", "sync_task", "sync_interleaved", "sync_p50", "sync_p99", "pipelined", "echo_1mib", "connect"][..],
        ),
        (
            "netref",
            &[
                "sync",
                "sync_task",
                "sync_interleaved",
                "sync_p50",
                "sync_p99",
                "pipelined",
                "echo_1mib",
                "echo_1mib_bytebuf",
                "create_release",
                "callback",
                "connect",
                "connect_early",
                "sync_min_client",
                "sync_min_server",
            ][..],
        ),
    ];
    for (system, metrics) in expected {
        for metric in metrics {
            let f = report.get(system, metric).unwrap_or_else(|| panic!("{system}.{metric} missing"));
            assert_eq!(f.values.len(), plan.runs, "{system}.{metric}");
            assert!(f.values.iter().all(|v| v.is_finite() && *v > 0.0), "{system}.{metric} = {:?}", f.values);
            let line = format!("{system}.{metric} ");
            assert!(text.lines().any(|l| l.starts_with(&line) && l.ends_with(&format!("n={}]", plan.runs))));
        }
        let (p50, p99) =
            (report.get(system, "sync_p50").unwrap().median(), report.get(system, "sync_p99").unwrap().median());
        assert!(p50 <= p99, "{system}: p50 {p50} > p99 {p99}");
    }
    // Every comparable netref figure has its ratio lines.
    for line in [
        "ratio netref/floor.sync ",
        "ratio netref/actor_floor.sync ",
        "ratio_per_run netref/actor_floor.sync_cpu_server ",
        "ratio netref/tarpc.sync ",
        "ratio netref/floor.sync_task ",
        "ratio_per_run netref/floor.sync_interleaved ",
        "ratio_per_run netref/tarpc.sync_interleaved ",
        "ratio_per_run netref/tarpc.sync_task ",
        "ratio netref/tarpc.connect ",
        "ratio netref/tarpc.connect_early ",
        "ratio netref/floor.connect ",
        "ratio netref/actor_floor.connect_early ",
        "ratio floor/tarpc.connect ",
        "ratio_per_run actor_floor/tarpc.connect ",
        "ratio netref/floor.echo_1mib_bytebuf ",
        "ratio netref/floor.sync_min_client ",
        "ratio_per_run netref/floor.sync_min_server ",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // CPU time per round trip, each side (procfs: Linux only).
    let cpu = if cfg!(target_os = "linux") { 2 } else { 0 };
    if cpu > 0 {
        for system in ["floor", "actor_floor", "tarpc", "netref"] {
            for side in ["sync_cpu_client", "sync_cpu_server"] {
                let f = report.get(system, side).unwrap_or_else(|| panic!("{system}.{side} missing"));
                assert!(f.values.iter().all(|us| us.is_finite() && *us > 0.0), "{system}.{side} = {:?}", f.values);
                // A side cannot spend more CPU per round trip than the round trip lasted on
                // average, plus one scheduler tick of slack over the whole loop.
                let per_rt_us = 1e6 / report.get(system, "sync").unwrap().median();
                assert!(f.median() < per_rt_us * 2.0 + 10_000.0 / plan.sync as f64, "{system}.{side} {f:?}");
            }
        }
        assert!(text.contains("ratio netref/floor.sync_cpu_server "), "{text}");
    }
    // netref against the floor: 8 comparable (+2 CPU) + the ByteBuf echo + early connect + the
    // two minimal-peer figures; against the floor in actors: 4 (+2 CPU) + early connect;
    // against tarpc: 8 comparable (+2 CPU) + the ByteBuf echo + early connect; the floor in
    // actors against the floor: 4 (+2 CPU); the floor against tarpc: 8 (+2 CPU); the floor in
    // actors against tarpc: 4 (+2 CPU).
    let ratios = 12 + 5 + 10 + 4 + 8 + 4 + 6 * cpu;
    assert_eq!(report.ratios().len(), ratios);
    assert_eq!(report.run_ratios().len(), ratios);
    assert!(!text.contains("actor_floor.sync_task"), "the floor in actors has no task variant");
    assert!(text.contains("ratio_per_run actor_floor/floor.sync "), "{text}");
    assert!(!text.contains("netref/actor_floor.sync_min"), "the minimal-peer figures compare with the floor only");
    assert!(!text.contains("netref/tarpc.sync_min"), "the minimal-peer figures compare with the floor only");
    assert!(text.contains("ratio_per_run netref/floor.sync "), "{text}");
    eprintln!("whole comparison in {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn an_unknown_server_kind_is_an_error() {
    assert!(netref_compare::serve("nope", "127.0.0.1:0").is_err());
}

#[test]
fn every_profiling_client_runs_against_its_server() {
    let exe = Path::new(env!("CARGO_BIN_EXE_compare"));
    let servers: Vec<(&str, netref_compare::ServerProcess)> = ["netref", "floor", "tarpc", "actor-floor"]
        .into_iter()
        .map(|kind| (kind, netref_compare::ServerProcess::spawn(exe, kind).expect("server starts")))
        .collect();
    for (op, kind, _) in netref_compare::CLIENT_OPS {
        assert_eq!(netref_compare::server_kind(op), Some(kind));
        let (_, server) = servers.iter().find(|(k, _)| *k == kind).expect("a server of every kind");
        netref_compare::client(op, server.addr(), 3).unwrap_or_else(|e| panic!("{op}: {e}"));
    }
    let err = netref_compare::client("nope", "127.0.0.1:1", 1).unwrap_err().to_string();
    assert!(err.contains("unknown operation") && err.contains("connect-early"), "{err}");

    // The command line: `--client OP ADDR N` prints one line, and usage errors exit with 2.
    let (_, netref) = &servers[0];
    let out = std::process::Command::new(exe).args(["--client", "sync", netref.addr(), "5"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sync 5 in "), "{out:?}");
    let out = std::process::Command::new(exe).args(["--client", "sync", netref.addr()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("create-release"), "usage lists the operations");
}
