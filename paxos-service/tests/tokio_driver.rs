//! The tokio driver: three nodes on one runtime decide keys, agree, and
//! find them again after a restart from their logs.
#![cfg(feature = "tokio")]

use paxos_service::app;
use paxos_service::async_node;
use paxos_service::node::{NodeError, NodeOptions, Reply, Request};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

struct Cluster {
    requests: Vec<mpsc::Sender<Request>>,
    tasks: Vec<JoinHandle<Result<(), NodeError>>>,
    stop: watch::Sender<bool>,
}

fn start(dir: &Path, addrs: &[SocketAddr]) -> Cluster {
    let (stop, stopped) = watch::channel(false);
    let mut requests = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..addrs.len() {
        let options = NodeOptions::local_member(i, addrs, dir);
        let (tx, rx) = mpsc::channel(1024);
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(async_node::run(options, rx, async move {
            let _ = stopped.wait_for(|&s| s).await;
        })));
        requests.push(tx);
    }
    Cluster { requests, tasks, stop }
}

impl Cluster {
    /// Asks `key` (proposing `value`) through node `via`; the decided value.
    async fn ask(&self, via: usize, key: &str, value: Option<&str>) -> Option<String> {
        let (tx, mut rx) = mpsc::channel(1);
        let request = Request::Ask {
            key: app::key(key).unwrap(),
            value: value.map(|v| app::value(v).unwrap()),
            reply: tx.into(),
        };
        self.requests[via].send(request).await.expect("node running");
        match tokio::time::timeout(Duration::from_secs(15), rx.recv()).await {
            Ok(Some(Reply::Answer { value, .. })) => value.as_ref().map(app::text),
            other => panic!("ask of {key} through node {}: {other:?}", via + 1),
        }
    }

    /// What node `i` holds for `key`, without consensus.
    async fn local(&self, i: usize, key: &str) -> Option<String> {
        let (tx, mut rx) = mpsc::channel(1);
        let request = Request::Local {
            key: app::key(key).unwrap(),
            reply: tx.into(),
        };
        self.requests[i].send(request).await.expect("node running");
        match rx.recv().await {
            Some(Reply::Answer { value, .. }) => value.as_ref().map(app::text),
            other => panic!("local read of {key} on node {}: {other:?}", i + 1),
        }
    }

    /// What node `i` holds for `key` once it has it (polled, at most 2 s).
    async fn held(&self, i: usize, key: &str) -> Option<String> {
        for _ in 0..100 {
            if let Some(v) = self.local(i, key).await {
                return Some(v);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        for t in self.tasks {
            t.await.expect("node task panicked").expect("node stopped cleanly");
        }
    }
}

#[test]
fn three_tokio_nodes_decide_keys_agree_and_recover() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sockets: Vec<UdpSocket> = (0..3).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        let addrs: Vec<SocketAddr> = sockets.iter().map(|s| s.local_addr().unwrap()).collect();
        drop(sockets);
        let cluster = start(dir.path(), &addrs);

        // 60 keys asked concurrently through every node, each with its own
        // value, and 20 keys asked twice with different values.
        let mut asks = Vec::new();
        for k in 0..60 {
            let (key, value) = (format!("k{k}"), format!("v{k}"));
            asks.push((k % 3, key, value));
        }
        for k in 0..20 {
            asks.push((k % 3, format!("twice{k}"), format!("a{k}")));
            asks.push(((k + 1) % 3, format!("twice{k}"), format!("b{k}")));
        }
        let cluster = std::sync::Arc::new(cluster);
        let answers: Vec<(String, String, Option<String>)> = futures_join(
            asks.into_iter()
                .map(|(via, key, value)| {
                    let cluster = std::sync::Arc::clone(&cluster);
                    tokio::spawn(async move {
                        let got = cluster.ask(via, &key, Some(&value)).await;
                        (key, value, got)
                    })
                })
                .collect(),
        )
        .await;
        let mut decided = std::collections::BTreeMap::new();
        for (key, value, got) in &answers {
            let got = got.clone().unwrap_or_else(|| panic!("{key} answered as unwritten"));
            if key.starts_with('k') {
                assert_eq!(&got, value, "{key} was asked once, with {value}");
            } else {
                let n = &key["twice".len()..];
                assert!(got == format!("a{n}") || got == format!("b{n}"), "{key} = {got}");
            }
            let first = decided.entry(key.clone()).or_insert_with(|| got.clone());
            assert_eq!(first, &got, "two answers for {key}");
        }
        assert_eq!(decided.len(), 80);

        // Every node holds every value once it applied it.
        for (key, value) in &decided {
            for i in 0..3 {
                assert_eq!(
                    cluster.held(i, key).await.as_ref(),
                    Some(value),
                    "node {} holds {key}",
                    i + 1
                );
            }
        }
        let Ok(cluster) = std::sync::Arc::try_unwrap(cluster) else {
            panic!("the ask tasks are done")
        };
        cluster.stop().await;

        // Restarted from their logs, the nodes answer the same values and
        // keep refusing to change them. (A node may learn which of its
        // slots are decided only from the new leader, so ask first.)
        let cluster = start(dir.path(), &addrs);
        for (i, (key, value)) in decided.iter().enumerate().step_by(7) {
            let got = cluster.ask(i % 3, key, Some("later")).await;
            assert_eq!(got.as_ref(), Some(value), "{key} changed after restart");
            for n in 0..3 {
                assert_eq!(
                    cluster.held(n, key).await.as_ref(),
                    Some(value),
                    "node {} after restart",
                    n + 1
                );
            }
        }
        assert_eq!(cluster.ask(1, "fresh", Some("new")).await.as_deref(), Some("new"));
        cluster.stop().await;
    });
}

/// Awaits every task in order.
async fn futures_join<T>(tasks: Vec<JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("task panicked"));
    }
    out
}
