//! Three nodes of a replicated key-value map in one process, on loopback
//! UDP, each with its own data directory: `cargo run -p paxos-std
//! --example kv`. The application is `machine.rs`; this file starts the
//! nodes and talks to them.

mod machine;

use machine::{Command, Kv};
use paxos_std::options::NodeOptions;
use paxos_std::runtime::Runtime;
use paxos_std::transport::free_loopback_addrs;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let addrs = free_loopback_addrs(3)?;
    let nodes = (0..3)
        .map(|i| Runtime::start(NodeOptions::local_member(i, &addrs, dir.path()), Kv::default()))
        .collect::<Result<Vec<_>, _>>()?;
    let put = |key: &str, value: &str| Command::Put {
        key: key.into(),
        value: value.into(),
    };
    // Any node takes requests: followers forward them to the leader.
    println!("put color=blue: {:?}", nodes[0].propose(put("color", "blue"))?);
    println!("put color=red:  {:?}", nodes[1].propose(put("color", "red"))?);
    let cas = |expected: &str, new: &str| Command::Cas {
        key: "color".into(),
        expected: Some(expected.into()),
        new: new.into(),
    };
    println!("cas blue->green: {:?}", nodes[2].propose(cas("blue", "green"))?);
    println!("cas red->green:  {:?}", nodes[2].propose(cas("red", "green"))?);
    println!(
        "delete color:    {:?}",
        nodes[0].propose(Command::Delete { key: "color".into() })?
    );
    for (i, node) in nodes.iter().enumerate() {
        let map = node.read(|kv| kv.0.clone())?;
        println!("node {}: {map:?}", i + 1);
    }
    Ok(())
}
