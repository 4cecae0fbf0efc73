//! A PostgreSQL server that goes away and comes back: calls answer `Unavailable` quickly
//! meanwhile, and the pool recovers by itself. The outage is a TCP forwarder on loopback
//! between the store and the server, closed (listener and every connection) and reopened on
//! the same port.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use licenses_app::ports::{ProductStore, StoreError};
use licenses_store::{Store, StoreConfig};
use licenses_testkit::{TestDatabase, free_port};
use support::{change, full_product, pid};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

struct Forwarder {
    task: JoinHandle<()>,
}

impl Forwarder {
    /// Forwards 127.0.0.1:`port` to `target` until stopped.
    fn start(port: u16, target: SocketAddr) -> Forwarder {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .unwrap();
        let listener = socket.listen(64).unwrap();
        let task = tokio::spawn(async move {
            // Dropped with this task: every forwarded connection closes with it.
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Forwarder { task }
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_unavailable_and_the_pool_recovers() {
    let db = TestDatabase::postgres();
    let mut url = url::Url::parse(db.url()).unwrap();
    let server = SocketAddr::from(([127, 0, 0, 1], url.port().unwrap_or(5432)));
    let port = free_port();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(port)).unwrap();

    let forwarder = Forwarder::start(port, server);
    let store = Store::open(&StoreConfig::new(
        url.to_string(),
        2,
        Duration::from_millis(500),
    ))
    .unwrap();
    store.migrate().await.unwrap();
    ProductStore::create(&store, &full_product("p1"), &change())
        .await
        .unwrap();

    forwarder.stop().await;
    for _ in 0..3 {
        let down = tokio::time::timeout(Duration::from_secs(60), store.list())
            .await
            .expect("answered during the outage");
        assert!(matches!(down, Err(StoreError::Unavailable(_))), "{down:?}");
        let write = tokio::time::timeout(
            Duration::from_secs(60),
            ProductStore::create(&store, &full_product("p2"), &change()),
        )
        .await
        .expect("answered during the outage");
        assert!(
            matches!(write, Err(StoreError::Unavailable(_))),
            "{write:?}"
        );
    }

    let _forwarder = Forwarder::start(port, server);
    let mut recovered = None;
    for _ in 0..50 {
        match store.list().await {
            Ok(products) => {
                recovered = Some(products);
                break;
            }
            Err(StoreError::Unavailable(_)) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(recovered, Some(vec![full_product("p1")]));
    assert_eq!(
        ProductStore::get(&store, &pid("p1")).await.unwrap(),
        Some(full_product("p1"))
    );
    drop(store);
}
