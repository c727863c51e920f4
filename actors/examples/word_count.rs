//! A distributed word count across three OS processes on loopback:
//! `cargo run -p netref-actors --example word_count`.
//!
//! The process started without arguments is the **coordinator**. It serves a service registry
//! ([`RegistryService`]) and its own netref server, which exports a `Coordinator` actor under
//! the name `coordinator`, and registers that server in the registry as `WORDCOUNT`. Then it
//! starts two **workers**: this same binary, run again with `--worker --registry ADDR`.
//!
//! Each worker finds the coordinator through the registry ([`connect_by_service`]), starts a
//! local `WordCounter` actor and joins by sending the coordinator an `ActorRef<WordCounter>`
//! inside a `Join` message. The ref travels by reference: the coordinator's `Count` requests
//! go back to the worker over the connection the worker opened, so workers listen on nothing.
//!
//! The coordinator generates deterministic text (a seeded PRNG, Zipf-distributed words from a
//! fixed vocabulary), splits it at word boundaries into chunks, keeps every chunk in flight at
//! once (spread round-robin over the workers), merges the counts, prints the top words and
//! checks the merged result against a count made locally. It then sends each worker a
//! one-way `Shutdown`, waits for both to exit, and exits 0 (1 on any failure, with a message).
//!
//! Every wait is bounded. The workers are killed if the coordinator fails (they are killed on
//! drop), and a worker exits on its own as soon as its connection to the coordinator closes,
//! so no worker outlives the coordinator.

use std::{
    collections::HashMap,
    net::SocketAddr,
    process::{ExitCode, Stdio},
    time::{Duration, Instant},
};

use actix::prelude::*;
use netref::{expose, prelude::*, ActorRef, RemoteActor, RemoteMessage, Server};
use netref_actors::registry::{connect_by_service, Registration, RegistryService};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// The name the coordinator registers under.
const SERVICE: &str = "WORDCOUNT";
/// The name under which the coordinator's server exports the `Coordinator` actor.
const COORDINATOR_EXPORT: &str = "coordinator";
const WORKERS: usize = 2;
const WORDS: usize = 200_000;
const CHUNKS: usize = 16;
const SEED: u64 = 0x5eed_c0de_2024;
const TOP: usize = 10;

/// Registry round trips, connecting, discovery.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the coordinator waits for every worker to join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a chunk may take to come back counted.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the workers get to exit once told to.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// A worker never lives longer than this, whatever the coordinator does.
const WORKER_MAX_LIFETIME: Duration = Duration::from_secs(120);

type Error = Box<dyn std::error::Error>;

// ---------------------------------------------------------------------------------------------
// The messages and actors.

/// Counts the words of one chunk of text.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Vec<(String, u64)>")]
struct Count {
    text: String,
}

impl RemoteMessage for Count {
    const NAME: &'static str = "word_count.Count";
}

/// Tells a worker to leave (one-way, sent with `do_send`).
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "()")]
struct Shutdown;

impl RemoteMessage for Shutdown {
    const NAME: &'static str = "word_count.Shutdown";
}

/// A worker offers its counter to the coordinator; the reply is how many workers have joined.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "usize")]
struct Join {
    name: String,
    counter: ActorRef<WordCounter>,
}

impl RemoteMessage for Join {
    const NAME: &'static str = "word_count.Join";
}

/// The worker's actor: counts the chunks it is sent.
struct WordCounter {
    name: String,
    chunks: u64,
    words: u64,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Actor for WordCounter {
    type Context = Context<Self>;
}

impl RemoteActor for WordCounter {
    const NAME: &'static str = "word_count.WordCounter";
}

impl Handler<Count> for WordCounter {
    type Result = MessageResult<Count>;

    fn handle(&mut self, msg: Count, _: &mut Context<Self>) -> Self::Result {
        let counts = count_words(&msg.text);
        self.chunks += 1;
        self.words += counts.values().sum::<u64>();
        MessageResult(counts.into_iter().collect())
    }
}

impl Handler<Shutdown> for WordCounter {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        println!("[{}] told to shut down after counting {} words in {} chunks", self.name, self.words, self.chunks);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        ctx.stop();
    }
}

/// The coordinator's actor: hands every worker that joins over to the coordinating task.
struct Coordinator {
    joined: mpsc::UnboundedSender<(String, ActorRef<WordCounter>)>,
    count: usize,
}

impl Actor for Coordinator {
    type Context = Context<Self>;
}

impl RemoteActor for Coordinator {
    const NAME: &'static str = "word_count.Coordinator";
}

impl Handler<Join> for Coordinator {
    type Result = usize;

    fn handle(&mut self, msg: Join, _: &mut Context<Self>) -> usize {
        self.count += 1;
        let _ = self.joined.send((msg.name, msg.counter));
        self.count
    }
}

// ---------------------------------------------------------------------------------------------
// Counting, and the text to count.

/// Lower-cased words with the punctuation around them trimmed.
fn count_words(text: &str) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for raw in text.split_whitespace() {
        let word = raw.trim_matches(|c: char| !c.is_alphanumeric());
        if !word.is_empty() {
            *counts.entry(word.to_lowercase()).or_insert(0) += 1;
        }
    }
    counts
}

const VOCABULARY: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on", "are", "with", "as",
    "his", "they", "be", "at", "one", "have", "this", "from", "or", "had", "by", "word", "but", "what", "some", "we",
    "can", "out", "other", "were", "all", "there", "when", "up", "use", "your", "how", "said", "an", "each", "she",
    "which", "do", "their", "time", "if", "will", "way", "about", "many", "then", "them", "write", "would", "like",
    "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look", "more", "day", "could", "go",
    "come", "did", "number", "sound", "no", "most", "people", "my", "over", "know", "water", "than", "call", "first",
    "who", "may", "down", "side", "been", "now", "find", "actor", "netref",
];

/// SplitMix64: a small, seeded, deterministic generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `words` words drawn from [`VOCABULARY`] with Zipf weights (the k-th word weighs 1/k), in
/// sentences: capitalized first word, commas now and then, a full stop at the end.
fn generate_text(words: usize, seed: u64) -> String {
    let mut rng = SplitMix64(seed);
    let mut cumulative = Vec::with_capacity(VOCABULARY.len());
    let mut total = 0.0;
    for rank in 1..=VOCABULARY.len() {
        total += 1.0 / rank as f64;
        cumulative.push(total);
    }
    let mut text = String::with_capacity(words * 6);
    let mut sentence_left = 0;
    for i in 0..words {
        let x = rng.next_f64() * total;
        let word = VOCABULARY[cumulative.partition_point(|&c| c <= x).min(VOCABULARY.len() - 1)];
        if i > 0 {
            text.push(if rng.next_u64().is_multiple_of(12) { '\n' } else { ' ' });
        }
        if sentence_left == 0 {
            sentence_left = 4 + rng.next_u64() % 12;
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                text.extend(first.to_uppercase());
                text.push_str(chars.as_str());
            }
        } else {
            text.push_str(word);
        }
        sentence_left -= 1;
        if sentence_left == 0 || i + 1 == words {
            text.push('.');
        } else if rng.next_u64().is_multiple_of(10) {
            text.push(',');
        }
    }
    text
}

/// Splits `text` into about `n` chunks, each ending at whitespace so no word is cut.
fn split_at_words(text: &str, n: usize) -> Vec<&str> {
    let target = text.len().div_ceil(n.max(1)).max(1);
    let mut chunks = Vec::with_capacity(n);
    let mut rest = text;
    while !rest.is_empty() {
        if rest.len() <= target {
            chunks.push(rest);
            break;
        }
        let mut end = target;
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let cut = rest[end..].find(char::is_whitespace).map_or(rest.len(), |i| end + i);
        chunks.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    chunks
}

fn top_words(counts: &HashMap<String, u64>, n: usize) -> Vec<(&str, u64)> {
    let mut all: Vec<(&str, u64)> = counts.iter().map(|(w, c)| (w.as_str(), *c)).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    all.truncate(n);
    all
}

// ---------------------------------------------------------------------------------------------
// The coordinator.

/// The worker processes. Each is spawned with `kill_on_drop`, so dropping this (on any error
/// path out of the coordinator) kills the workers still running.
struct Workers(Vec<(String, tokio::process::Child)>);

impl Workers {
    fn spawn(registry: SocketAddr, count: usize) -> Result<Workers, Error> {
        let exe = std::env::current_exe()?;
        let mut workers = Workers(Vec::with_capacity(count));
        for i in 1..=count {
            let name = format!("worker-{i}");
            let child = tokio::process::Command::new(&exe)
                .args(["--worker", "--registry", &registry.to_string(), "--name", &name])
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start {name} ({}): {e}", exe.display()))?;
            println!("[coordinator] started {name} (pid {})", child.id().unwrap_or(0));
            workers.0.push((name, child));
        }
        Ok(workers)
    }

    /// A worker that has already exited, if any (checked while they should all be running).
    fn exited(&mut self) -> Option<String> {
        self.0.iter_mut().find_map(|(name, child)| match child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(format!("{name} exited early ({status})")),
            Err(e) => Some(format!("cannot check on {name}: {e}")),
        })
    }

    /// Waits (bounded) for every worker to exit, successfully.
    async fn wait_all(&mut self, limit: Duration) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + limit;
        for (name, child) in &mut self.0 {
            let status = tokio::time::timeout_at(deadline, child.wait())
                .await
                .map_err(|_| format!("{name} did not exit within {limit:?}"))??;
            if !status.success() {
                return Err(format!("{name} exited with {status}").into());
            }
            println!("[coordinator] {name} exited ({status})");
        }
        Ok(())
    }
}

async fn coordinator() -> Result<(), Error> {
    let started = Instant::now();

    // The registry, and the coordinator's own server, registered in it.
    let registry = RegistryService::default().serve("127.0.0.1:0").await?;
    let registry_addr = registry.local_addr().ok_or("the registry has no TCP address")?;
    let (joined_tx, mut joined) = mpsc::unbounded_channel();
    let actor = Coordinator { joined: joined_tx, count: 0 }.start();
    let service = Service::void().export(COORDINATOR_EXPORT, expose(actor).handle::<Join>());
    let server = Server::builder(service).bind_tcp("127.0.0.1:0").await?;
    let server_addr = server.local_addr().ok_or("the server has no TCP address")?;
    let registration = Registration::start(registry_addr, SERVICE, server_addr.to_string(), Duration::from_secs(30));
    tokio::time::timeout(CONNECT_TIMEOUT, registration.registered())
        .await
        .map_err(|_| format!("could not register {SERVICE} within {CONNECT_TIMEOUT:?}"))?;
    println!("[coordinator] registry on {registry_addr}; serving on {server_addr}, registered as {SERVICE}");

    // The workers join by sending their counters.
    let mut workers = Workers::spawn(registry_addr, WORKERS)?;
    let mut counters: Vec<(String, ActorRef<WordCounter>)> = Vec::with_capacity(WORKERS);
    let join_deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
    while counters.len() < WORKERS {
        if let Some(error) = workers.exited() {
            return Err(error.into());
        }
        if tokio::time::Instant::now() >= join_deadline {
            return Err(format!("only {}/{WORKERS} workers joined within {JOIN_TIMEOUT:?}", counters.len()).into());
        }
        // Wake up now and then to notice a worker that died before joining.
        if let Ok(next) = tokio::time::timeout(Duration::from_millis(50), joined.recv()).await {
            let (name, counter) = next.ok_or("the coordinator actor stopped")?;
            println!("[coordinator] {name} joined ({}/{WORKERS})", counters.len() + 1);
            counters.push((name, counter));
        }
    }
    println!("[coordinator] all {WORKERS} workers joined after {:.0?}", started.elapsed());

    // Generate, split, dispatch: every chunk in flight at once, round-robin over the workers.
    let t = Instant::now();
    let text = generate_text(WORDS, SEED);
    let chunks = split_at_words(&text, CHUNKS);
    println!(
        "[coordinator] generated {WORDS} words ({} KiB) in {:.0?}; split into {} chunks",
        text.len() / 1024,
        t.elapsed(),
        chunks.len()
    );
    let t = Instant::now();
    let mut per_worker = vec![0usize; counters.len()];
    let pending: Vec<_> = chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let w = i % counters.len();
            per_worker[w] += 1;
            let reply = counters[w].1.send(Count { text: (*chunk).to_owned() });
            reply.set_expiry(Some(CHUNK_TIMEOUT));
            (i, w, reply)
        })
        .collect();
    let spread: Vec<String> = counters.iter().zip(&per_worker).map(|((name, _), n)| format!("{n} to {name}")).collect();
    println!("[coordinator] dispatched {} chunks: {}", pending.len(), spread.join(", "));
    let mut merged: HashMap<String, u64> = HashMap::new();
    for (i, w, reply) in pending {
        let counts = reply.await.map_err(|e| format!("chunk {i} on {}: {e}", counters[w].0))?;
        for (word, n) in counts {
            *merged.entry(word).or_insert(0) += n;
        }
    }
    let total: u64 = merged.values().sum();
    println!(
        "[coordinator] merged {} chunk results in {:.0?}: {total} words, {} distinct",
        chunks.len(),
        t.elapsed(),
        merged.len()
    );
    println!("[coordinator] top {TOP} words:");
    for (rank, (word, n)) in top_words(&merged, TOP).into_iter().enumerate() {
        println!("[coordinator] {:>4}. {word:<8} {n:>7}", rank + 1);
    }

    // The check.
    let local = count_words(&text);
    if merged != local {
        let differ = local.keys().chain(merged.keys()).filter(|w| local.get(*w) != merged.get(*w)).count();
        return Err(format!(
            "the distributed count differs from the local count on {differ} words (local total {}, merged {total})",
            local.values().sum::<u64>()
        )
        .into());
    }
    println!("[coordinator] word counts match the local count ({total} words, {} distinct)", local.len());

    // Tell the workers to leave, and wait for them.
    for (name, counter) in &counters {
        counter.do_send(Shutdown).map_err(|e| format!("cannot tell {name} to shut down: {e}"))?;
    }
    drop(counters);
    workers.wait_all(EXIT_TIMEOUT).await?;
    let _ = tokio::time::timeout(CONNECT_TIMEOUT, registration.stop()).await;
    server.shutdown(Duration::from_secs(1)).await;
    registry.shutdown(Duration::from_secs(1)).await;
    println!("[coordinator] done in {:.0?}", started.elapsed());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A worker.

async fn worker(registry: &str, name: &str) -> Result<(), Error> {
    let (shutdown_tx, shutdown) = oneshot::channel();
    let counter = WordCounter { name: name.to_owned(), chunks: 0, words: 0, shutdown: Some(shutdown_tx) }.start();
    let counter: ActorRef<WordCounter> =
        ActorRef::from_netref(NetRef::from(expose(counter).handle::<Count>().handle::<Shutdown>().build()))?;

    let peer = connect_by_service(registry, SERVICE, Service::void(), Config::default(), CONNECT_TIMEOUT).await?;
    println!("[{name}] discovered {SERVICE} through the registry at {registry}");
    let coordinator: ActorRef<Coordinator> = peer.lookup_actor(COORDINATOR_EXPORT).await?;
    let join = coordinator.send(Join { name: name.to_owned(), counter });
    join.set_expiry(Some(CONNECT_TIMEOUT));
    let n = join.await?;
    println!("[{name}] joined the coordinator (worker {n})");

    tokio::select! {
        _ = shutdown => {
            let _ = tokio::time::timeout(Duration::from_secs(2), peer.close()).await;
            Ok(())
        }
        _ = peer.closed() => {
            println!("[{name}] the connection to the coordinator closed; exiting");
            Ok(())
        }
        _ = tokio::time::sleep(WORKER_MAX_LIFETIME) => {
            Err(format!("still running after {WORKER_MAX_LIFETIME:?}; giving up").into())
        }
    }
}

// ---------------------------------------------------------------------------------------------

fn usage() -> ExitCode {
    eprintln!("usage: word_count                                   (runs the coordinator and its workers)");
    eprintln!("       word_count --worker --registry ADDR [--name NAME]");
    ExitCode::from(2)
}

#[actix_rt::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let (role, result) = if args.iter().any(|a| a == "--worker") {
        let Some(registry) = value("--registry") else { return usage() };
        let name = value("--name").unwrap_or_else(|| format!("worker-{}", std::process::id()));
        let result = worker(&registry, &name).await;
        (name, result)
    } else if args.is_empty() {
        ("coordinator".to_owned(), coordinator().await)
    } else {
        return usage();
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[{role}] error: {e}");
            ExitCode::FAILURE
        }
    }
}
