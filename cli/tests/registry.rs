//! Guards `--registry netref://HOST:PORT`: ADDR names a service, found through a netref-actors
//! registry, and an unknown name exits 3 saying which registry was asked.

mod common;

use std::time::{Duration, Instant};

use common::{run, Demo};
use netref_actors::registry::{self, Registration, RegistryService};

#[actix_rt::test]
async fn a_service_is_found_by_name_through_the_registry() {
    let registry_server = RegistryService::default().serve("127.0.0.1:0").await.unwrap();
    let registry_addr = registry_server.local_addr().unwrap().to_string();
    let demo = Demo::tcp();
    let _registration =
        Registration::start(registry_addr.clone(), "calculator", demo.addr.clone(), registry::DEFAULT_TTL);
    // Wait (bounded) until the registration is visible.
    let deadline = Instant::now() + Duration::from_secs(10);
    while registry::discover(registry_addr.clone(), "calculator").await.is_err() {
        assert!(Instant::now() < deadline, "the registration never became visible");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = format!("netref://{registry_addr}");
    let (found, unknown) = tokio::task::spawn_blocking(move || {
        (
            run(&["--registry", &url, "call", "CALCULATOR", "add", "1", "2"]),
            run(&["--registry", &url, "ping", "nobody"]),
        )
    })
    .await
    .unwrap();
    assert_eq!((found.code, found.stdout.as_str()), (0, "3\n"), "{found:?}");
    assert_eq!(unknown.code, 3, "{unknown:?}");
    assert!(unknown.stderr.contains(&format!("looking up \"nobody\" at registry {registry_addr}")), "{unknown:?}");
}
