//! Three nodes on one tokio runtime with the async driver, on loopback UDP
//! with their logs in a temporary folder: ask a few keys, print the
//! answers, stop.
//!
//! ```sh
//! cargo run -p paxos-std --features tokio --example tokio_cluster
//! ```

use paxos_service::app;
use paxos_service::async_node;
use paxos_service::node::{NodeOptions, Reply, Request};
use paxos_std::transport::free_loopback_addrs;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One thread runs all three nodes; each node's syncs run on its own sync thread.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(cluster())
}

async fn cluster() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let addrs = free_loopback_addrs(3)?;
    let (stop, stopped) = watch::channel(false);
    let mut nodes = Vec::new();
    for i in 0..3 {
        // Demo only: a real node reads its key with ClusterKey::from_file.
        let options = NodeOptions::local_member(i, &addrs, dir.path());
        let (requests, inbox) = mpsc::channel(1024);
        let mut stopped = stopped.clone();
        let task = tokio::spawn(async_node::run(options, inbox, async move {
            let _ = stopped.wait_for(|&s| s).await;
        }));
        nodes.push((requests, task));
    }

    // Any node takes an ask: one that does not lead forwards it. The second
    // ask of "color" proposes another value and learns the first one.
    let asks = [
        ("color", Some("blue")),
        ("shape", Some("circle")),
        ("color", Some("red")),
        ("size", None),
    ];
    for (n, (key, value)) in asks.into_iter().enumerate() {
        let (tx, mut rx) = mpsc::channel(1);
        let request = Request::Ask {
            key: app::key(key)?,
            value: value.map(app::value).transpose()?,
            reply: tx.into(),
        };
        let via = n % 3;
        nodes[via].0.send(request).await?;
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await? {
            Some(Reply::Answer { value: decided, .. }) => println!(
                "node {} asked {key} = {value:?}: decided {:?}",
                via + 1,
                decided.as_ref().map(app::text)
            ),
            other => println!("node {} asked {key}: {other:?}", via + 1),
        }
    }

    stop.send(true)?;
    for (_, task) in nodes {
        task.await??;
    }
    Ok(())
}
