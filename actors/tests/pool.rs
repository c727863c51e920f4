//! Guards `netref_actors::pool`: round-robin spreads requests evenly over members on separate
//! connections, sequentially and concurrently; least-in-flight passes over a member busy with a
//! slow request while others are idle; a member whose connection closed is removed (at pick
//! time, and in the background when its connection is lost) while requests keep succeeding on
//! the rest, and one whose actor stopped by the request that finds it so; a request lost in flight is reported, not retried; an empty
//! pool gives a clear error. Each test runs over the in-memory transport and TCP on loopback.

mod common;

use common::{connect, wait_until, Transport};

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use actix::prelude::*;
use netref::{expose, prelude::*, ActorRef, RemoteActor, RemoteMessage};
use netref_actors::pool::{Pool, PoolError, Strategy};
use serde::{Deserialize, Serialize};
use tokio::{sync::Semaphore, task::JoinSet};

const T: Duration = Duration::from_secs(5);

/// A worker that says who it is; `Slow` answers once the test opens the gate.
struct Worker {
    name: String,
    gate: Arc<Semaphore>,
}

impl Actor for Worker {
    type Context = Context<Self>;
}

impl RemoteActor for Worker {
    const NAME: &'static str = "test.Worker";
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "String")]
struct Whoami;

impl RemoteMessage for Whoami {
    const NAME: &'static str = "worker.Whoami";
}

impl Handler<Whoami> for Worker {
    type Result = String;
    fn handle(&mut self, _: Whoami, _: &mut Context<Self>) -> String {
        self.name.clone()
    }
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "String")]
struct Slow;

impl RemoteMessage for Slow {
    const NAME: &'static str = "worker.Slow";
}

impl Handler<Slow> for Worker {
    type Result = ResponseFuture<String>;
    fn handle(&mut self, _: Slow, _: &mut Context<Self>) -> Self::Result {
        let (name, gate) = (self.name.clone(), self.gate.clone());
        Box::pin(async move {
            gate.acquire().await.unwrap().forget();
            name
        })
    }
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "()")]
struct Stop;

impl RemoteMessage for Stop {
    const NAME: &'static str = "worker.Stop";
}

impl Handler<Stop> for Worker {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Workers `w0..wn`, each served on its own connection.
struct Cluster {
    servers: Vec<Peer>,
    clients: Vec<Peer>,
    members: Vec<ActorRef<Worker>>,
    /// Each worker's gate for `Slow`.
    gates: Vec<Arc<Semaphore>>,
}

async fn cluster(t: Transport, n: usize) -> Cluster {
    let mut c = Cluster { servers: Vec::new(), clients: Vec::new(), members: Vec::new(), gates: Vec::new() };
    for i in 0..n {
        let gate = Arc::new(Semaphore::new(0));
        c.gates.push(gate.clone());
        let addr = Worker { name: format!("w{i}"), gate: gate.clone() }.start();
        let export = expose(addr).handle::<Whoami>().handle::<Slow>().handle::<Stop>();
        let (server, client) = connect(t, Service::void().export("worker", export)).await;
        c.members.push(client.lookup_actor("worker").await.unwrap());
        c.servers.push(server);
        c.clients.push(client);
    }
    c
}

fn pool_of(strategy: Strategy, c: &Cluster) -> Pool<Worker> {
    let pool = Pool::new(strategy);
    for m in &c.members {
        assert!(pool.add(m.clone()));
    }
    assert!(!pool.add(c.members[0].clone()), "a member is added once");
    pool
}

fn tally(names: &[String]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for n in names {
        *counts.entry(n.as_str()).or_default() += 1;
    }
    counts
}

async fn round_robin_spreads_evenly(t: Transport) {
    let c = cluster(t, 3).await;
    let pool = pool_of(Strategy::RoundRobin, &c);
    let mut names = Vec::new();
    for _ in 0..30 {
        names.push(pool.send(Whoami).await.unwrap());
    }
    assert!(names.chunks(3).all(|turn| turn == names[..3].to_vec()), "members in turn: {names:?}");
    assert_eq!(tally(&names), BTreeMap::from([("w0", 10), ("w1", 10), ("w2", 10)]));

    // Concurrently, from tasks holding clones of the pool.
    let mut tasks = JoinSet::new();
    for _ in 0..30 {
        let pool = pool.clone();
        tasks.spawn(async move { pool.send(Whoami).await.unwrap() });
    }
    let names: Vec<String> = tasks.join_all().await;
    assert_eq!(tally(&names), BTreeMap::from([("w0", 10), ("w1", 10), ("w2", 10)]));
}

async fn least_in_flight_prefers_idle_members(t: Transport) {
    let c = cluster(t, 3).await;
    let pool = pool_of(Strategy::LeastInFlight, &c);
    let slow = tokio::spawn({
        let pool = pool.clone();
        async move { pool.send(Slow).await.unwrap() }
    });
    wait_until(T, "the slow request is in flight", || async { c.members.iter().any(|m| pool.in_flight(m) == Some(1)) })
        .await;
    let busy = c.members.iter().position(|m| pool.in_flight(m) == Some(1)).unwrap();
    let mut names = Vec::new();
    for _ in 0..20 {
        names.push(pool.send(Whoami).await.unwrap());
    }
    let idle: Vec<String> = (0..3).filter(|&i| i != busy).map(|i| format!("w{i}")).collect();
    assert_eq!(
        tally(&names),
        BTreeMap::from([(idle[0].as_str(), 10), (idle[1].as_str(), 10)]),
        "the busy member w{busy} is passed over, the idle ones alternate"
    );
    c.gates[busy].add_permits(1);
    assert_eq!(tokio::time::timeout(T, slow).await.unwrap().unwrap(), format!("w{busy}"));
    assert_eq!(pool.in_flight(&c.members[busy]), Some(0));
}

async fn dead_members_are_removed_and_requests_keep_succeeding(t: Transport) {
    let c = cluster(t, 3).await;
    let pool = pool_of(Strategy::RoundRobin, &c);

    // Members added off any runtime get no background watch: only the checks of `send` remove them.
    let unwatched = Pool::new(Strategy::RoundRobin);
    std::thread::spawn({
        let (unwatched, members) = (unwatched.clone(), c.members.clone());
        move || members.into_iter().for_each(|m| assert!(unwatched.add(m)))
    })
    .join()
    .unwrap();

    // The connection of w1 is closed on the pools' side: `send` skips and removes it.
    c.clients[1].close().await;
    for _ in 0..30 {
        assert_ne!(unwatched.send(Whoami).await.unwrap(), "w1");
        assert_ne!(pool.send(Whoami).await.unwrap(), "w1");
    }
    assert_eq!((unwatched.dropped(), unwatched.len()), (1, 2));
    assert_eq!((pool.dropped(), pool.len()), (1, 2));

    // In the background: the other side closes w2's connection; nothing is sent meanwhile.
    c.servers[2].close().await;
    wait_until(T, "the pool drops w2, whose connection was lost", || async { pool.len() == 1 }).await;
    assert_eq!(pool.members(), [c.members[0].clone()]);
    for _ in 0..5 {
        assert_eq!(pool.send(Whoami).await.unwrap(), "w0");
    }

    // A member whose actor stopped is dropped by the request that finds it stopped (not retried:
    // it may have started); then the pool is empty.
    c.members[0].send(Stop).await.unwrap();
    let err = pool.send(Whoami).await.unwrap_err();
    assert!(matches!(&err, PoolError::Request(Error::Remote(e)) if e.is(netref::kinds::ACTOR_STOPPED)), "{err:?}");
    assert!(pool.is_empty());
    assert_eq!(pool.dropped(), 3);
    let err = pool.send(Whoami).await.unwrap_err();
    assert!(matches!(err, PoolError::Empty { actor: "test.Worker" }), "{err:?}");
}

async fn a_request_lost_in_flight_is_not_retried(t: Transport) {
    let c = cluster(t, 2).await;
    let pool = pool_of(Strategy::LeastInFlight, &c);
    let slow = tokio::spawn({
        let pool = pool.clone();
        async move { pool.send(Slow).await }
    });
    wait_until(T, "the slow request is in flight", || async { c.members.iter().any(|m| pool.in_flight(m) == Some(1)) })
        .await;
    let busy = c.members.iter().position(|m| pool.in_flight(m) == Some(1)).unwrap();
    // Retried on the other worker, the request would succeed: its gate is open.
    c.gates[1 - busy].add_permits(1);
    c.clients[busy].close().await;
    let err = tokio::time::timeout(T, slow).await.unwrap().unwrap().unwrap_err();
    assert!(matches!(err, PoolError::Request(Error::ConnectionClosed(_))), "{err:?}");
    assert_eq!(pool.members(), [c.members[1 - busy].clone()]);
    assert_eq!(pool.send(Slow).await.unwrap(), format!("w{}", 1 - busy), "the permit is still there");
}

#[actix_rt::test]
async fn an_empty_pool_gives_a_clear_error() {
    let pool = Pool::<Worker>::new(Strategy::LeastInFlight);
    assert!(pool.is_empty());
    let err = pool.send(Whoami).await.unwrap_err();
    assert!(matches!(err, PoolError::Empty { actor: "test.Worker" }), "{err:?}");
    assert_eq!(err.to_string(), "the pool of test.Worker actors is empty: no member to send the request to");
}

over_both_transports!(
    round_robin_spreads_evenly,
    least_in_flight_prefers_idle_members,
    dead_members_are_removed_and_requests_keep_succeeding,
    a_request_lost_in_flight_is_not_retried,
);
