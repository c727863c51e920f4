//! Figures over runs: median, min, max; the report's text lines and ratios.

use std::fmt::Write as _;

/// One measured value of one run: `(metric, unit, value)`.
pub(crate) type Sample = (&'static str, &'static str, f64);

/// One figure over all runs.
#[derive(Clone, Debug)]
pub struct Figure {
    /// `floor`, `tarpc` or `netref`.
    pub system: &'static str,
    /// The metric's name, shared by systems where the figures are comparable (`sync`, …).
    pub metric: &'static str,
    /// The unit (`calls/s`, `us`, `MiB/s`, …).
    pub unit: &'static str,
    /// One value per run.
    pub values: Vec<f64>,
}

/// The median of `values` (sorted in place; 0 for none).
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

impl Figure {
    /// `(median, min, max)` of the values.
    pub fn summary(&self) -> (f64, f64, f64) {
        let mut v = self.values.clone();
        let median = median(&mut v);
        (median, v[0], v[v.len() - 1])
    }

    /// The median.
    pub fn median(&self) -> f64 {
        self.summary().0
    }
}

/// Everything one invocation measured.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Figures in the order first measured.
    pub figures: Vec<Figure>,
    /// Facts about the setup (processes, CPU affinity), printed as `#` lines.
    pub notes: Vec<String>,
}

/// The `(system, baseline)` pairs whose figures are compared, in the order of the ratio lines:
/// netref with each baseline; the floor in actors with the raw floor (what the actor runtime
/// alone costs); and the two floors with tarpc (how far tarpc is from the floor, and how close
/// any system whose connections are actix actors can come to it).
const COMPARED: [(&str, &str); 6] = [
    ("netref", "floor"),
    ("netref", "actor_floor"),
    ("netref", "tarpc"),
    ("actor_floor", "floor"),
    ("floor", "tarpc"),
    ("actor_floor", "tarpc"),
];

/// Metrics that are the same operation in each system, so their ratio means something.
const COMPARABLE: [&str; 10] = [
    "sync",
    "sync_task",
    "sync_interleaved",
    "sync_p50",
    "sync_p99",
    "sync_cpu_client",
    "sync_cpu_server",
    "pipelined",
    "echo_1mib",
    "connect",
];

/// netref variants of a comparable metric: `(netref metric, baseline metric)`.
const VARIANTS: [(&str, &str); 2] = [("echo_1mib_bytebuf", "echo_1mib"), ("connect_early", "connect")];

/// netref figures compared with the floor only: one side of netref against a minimal peer
/// (`minimal`), whose shortfall from the floor is that side's cost.
const FLOOR_VARIANTS: [(&str, &str); 2] = [("sync_min_client", "sync"), ("sync_min_server", "sync")];

/// The `(netref metric, baseline metric)` pairs compared with `base`.
fn pairs(base: &str) -> impl Iterator<Item = (&'static str, &'static str)> {
    let floor_only = if base == "floor" { &FLOOR_VARIANTS[..] } else { &[] };
    COMPARABLE.iter().map(|m| (*m, *m)).chain(VARIANTS).chain(floor_only.iter().copied())
}

fn num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

impl Report {
    pub(crate) fn add_run(&mut self, system: &'static str, samples: Vec<Sample>) {
        for (metric, unit, value) in samples {
            match self.figures.iter_mut().find(|f| f.system == system && f.metric == metric) {
                Some(f) => f.values.push(value),
                None => self.figures.push(Figure { system, metric, unit, values: vec![value] }),
            }
        }
    }

    /// The figure `system.metric`, if measured.
    pub fn get(&self, system: &str, metric: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.system == system && f.metric == metric)
    }

    /// `<system>/<baseline>.<metric>` ratios of medians, for the comparable metrics.
    pub fn ratios(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for (system, base) in COMPARED {
            for (metric, base_metric) in pairs(base) {
                if let (Some(n), Some(b)) = (self.get(system, metric), self.get(base, base_metric)) {
                    out.push((format!("{system}/{base}.{metric}"), n.median() / b.median()));
                }
            }
        }
        out
    }

    /// Per-run ratios of the same metrics as [`ratios`](Report::ratios): run `i` of the system
    /// against run `i` of the baseline, as `(name, median, min, max)`. The systems take turns
    /// within each run, so a pair shares the machine's state of the moment; on a noisy machine
    /// their median moves less than the ratio of two medians.
    pub fn run_ratios(&self) -> Vec<(String, f64, f64, f64)> {
        let mut out = Vec::new();
        for (system, base) in COMPARED {
            for (metric, base_metric) in pairs(base) {
                let (Some(n), Some(b)) = (self.get(system, metric), self.get(base, base_metric)) else { continue };
                if n.values.len() != b.values.len() || n.values.is_empty() {
                    continue;
                }
                let per_run = Figure {
                    system,
                    metric,
                    unit: "",
                    values: n.values.iter().zip(&b.values).map(|(n, b)| n / b).collect(),
                };
                let (median, min, max) = per_run.summary();
                out.push((format!("{system}/{base}.{metric}"), median, min, max));
            }
        }
        out
    }

    /// The report as text: `# notes`, one `system.metric median unit [min X max Y, n=N]` line
    /// per figure, then `ratio <system>/<base>.<metric> X` lines (ratios of medians) and
    /// `ratio_per_run <system>/<base>.<metric> median [min X max Y]` lines.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for n in &self.notes {
            let _ = writeln!(s, "# {n}");
        }
        for f in &self.figures {
            let (med, min, max) = f.summary();
            let _ = writeln!(
                s,
                "{}.{} {} {} [min {} max {}, n={}]",
                f.system,
                f.metric,
                num(med),
                f.unit,
                num(min),
                num(max),
                f.values.len()
            );
        }
        for (name, r) in self.ratios() {
            let _ = writeln!(s, "ratio {name} {r:.3}");
        }
        for (name, median, min, max) in self.run_ratios() {
            let _ = writeln!(s, "ratio_per_run {name} {median:.3} [min {min:.3} max {max:.3}]");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max_and_ratios() {
        let mut r = Report::default();
        for v in [3.0, 1.0, 2.0, 10.0] {
            r.add_run("floor", vec![("sync", "rt/s", v * 10.0)]);
            r.add_run("netref", vec![("sync", "calls/s", v)]);
        }
        let f = r.get("netref", "sync").unwrap();
        assert_eq!(f.summary(), (2.5, 1.0, 10.0));
        assert_eq!(r.ratios(), vec![("netref/floor.sync".to_owned(), 0.1)]);
        let text = r.render();
        assert!(text.contains("netref.sync 2.50 calls/s [min 1.00 max 10.0, n=4]"), "{text}");
        assert!(text.contains("ratio netref/floor.sync 0.100"), "{text}");
    }

    #[test]
    fn per_run_ratios_pair_the_runs() {
        let mut r = Report::default();
        // The machine slows down run by run; netref keeps the same share of the floor.
        for (floor, netref) in [(100.0, 80.0), (50.0, 40.0), (200.0, 160.0)] {
            r.add_run("floor", vec![("sync", "rt/s", floor)]);
            r.add_run("netref", vec![("sync", "calls/s", netref)]);
        }
        assert_eq!(r.run_ratios(), vec![("netref/floor.sync".to_owned(), 0.8, 0.8, 0.8)]);
        assert!(r.render().contains("ratio_per_run netref/floor.sync 0.800 [min 0.800 max 0.800]"));
    }
}
