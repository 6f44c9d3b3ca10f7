//! The runtime's async front-end (feature `tokio`), as the `kv_tokio`
//! example uses it: many tasks proposing at once on one thread, every
//! node ending with the same map.
#![cfg(feature = "tokio")]

#[path = "../examples/kv/machine.rs"]
mod machine;

use machine::{Command, Kv};
use paxos_std::options::NodeOptions;
use paxos_std::runtime::Runtime;
use paxos_std::transport::free_loopback_addrs;
use std::sync::Arc;

#[tokio::test(flavor = "current_thread")]
async fn many_tasks_propose_at_once_and_every_node_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_loopback_addrs(3).unwrap();
    let nodes: Vec<Arc<Runtime<Kv>>> = (0..3)
        .map(|i| Arc::new(Runtime::start(NodeOptions::local_member(i, &addrs, dir.path()), Kv::default()).unwrap()))
        .collect();
    let tasks: Vec<_> = (0..200)
        .map(|k| {
            let node = Arc::clone(&nodes[k % 3]);
            tokio::spawn(async move {
                let put = Command::Put {
                    key: format!("k{k}"),
                    value: format!("v{k}"),
                };
                node.propose_async(put).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), Ok(None), "each key is new");
    }
    let mut maps = Vec::new();
    for node in &nodes {
        maps.push(node.read_async(|kv| kv.0.clone()).await.unwrap());
    }
    assert_eq!(maps[0].len(), 200);
    assert!(maps.iter().all(|m| *m == maps[0]));
}
