//! The `kv` example's map on tokio: `cargo run -p paxos-std --features
//! tokio --example kv_tokio`. A hundred tasks write at once through the
//! async front-end; the nodes are the same runtime as in `kv`.

#[path = "kv/machine.rs"]
mod machine;

use machine::{Command, Kv};
use paxos_std::options::NodeOptions;
use paxos_std::runtime::Runtime;
use paxos_std::transport::free_loopback_addrs;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let addrs = free_loopback_addrs(3)?;
    let nodes: Vec<Arc<Runtime<Kv>>> = (0..3)
        .map(|i| Runtime::start(NodeOptions::local_member(i, &addrs, dir.path()), Kv::default()).map(Arc::new))
        .collect::<Result<_, _>>()?;
    let tasks: Vec<_> = (0..100)
        .map(|k| {
            let node = Arc::clone(&nodes[k % 3]);
            tokio::spawn(async move {
                let put = Command::Put {
                    key: format!("key{}", k % 10),
                    value: format!("value{k}"),
                };
                node.propose_async(put).await
            })
        })
        .collect();
    for task in tasks {
        task.await??.map_err(|_| "a put cannot fail")?;
    }
    for (i, node) in nodes.iter().enumerate() {
        let map = node.read_async(|kv| kv.0.clone()).await?;
        println!("node {}: {} keys, key0 = {:?}", i + 1, map.len(), map.get("key0"));
    }
    Ok(())
}
