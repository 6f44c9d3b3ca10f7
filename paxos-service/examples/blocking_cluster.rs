//! Three nodes in one process with the blocking driver, on loopback UDP
//! with their logs in a temporary folder: ask a few keys, print the
//! answers, stop.
//!
//! ```sh
//! cargo run -p paxos-std --example blocking_cluster
//! ```

use paxos_service::app;
use paxos_service::node::{self, NodeOptions, Reply, Request};
use paxos_std::transport::free_loopback_addrs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let addrs = free_loopback_addrs(3)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut nodes = Vec::new();
    for i in 0..3 {
        // Demo only: a real node reads its key with ClusterKey::from_file.
        let options = NodeOptions::local_member(i, &addrs, dir.path());
        let (requests, inbox) = node::inbox();
        let thread = node::spawn(options, inbox, Arc::clone(&stop))?;
        nodes.push((requests, thread));
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
        let (tx, rx) = mpsc::sync_channel(1);
        let request = Request::Ask {
            key: app::key(key)?,
            value: value.map(app::value).transpose()?,
            reply: tx.into(),
        };
        let via = n % 3;
        nodes[via].0.send(request)?;
        match rx.recv_timeout(Duration::from_secs(10))? {
            Reply::Answer { value: decided, .. } => println!(
                "node {} asked {key} = {value:?}: decided {:?}",
                via + 1,
                decided.as_ref().map(app::text)
            ),
            other => println!("node {} asked {key}: {other:?}", via + 1),
        }
    }

    stop.store(true, Ordering::Relaxed);
    for (_, thread) in nodes {
        thread.join().map_err(|_| "a node thread panicked")??;
    }
    Ok(())
}
