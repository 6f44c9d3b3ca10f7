//! A distributed lock on three nodes, with reads under the leader lease:
//! `cargo run -p paxos-std --example lock`. The leader answers "who holds
//! the lock?" from its own state, without a round trip through the log,
//! while its lease holds; the other nodes refuse such reads.

mod machine;

use machine::{Command, Locks};
use paxos_core::replica::LeaseConfig;
use paxos_core::Duration;
use paxos_std::options::NodeOptions;
use paxos_std::runtime::{ProposeError, Runtime};
use paxos_std::transport::free_loopback_addrs;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let addrs = free_loopback_addrs(3)?;
    let nodes = (0..3)
        .map(|i| {
            let mut options = NodeOptions::local_member(i, &addrs, dir.path());
            // Clocks err by at most 0.1 %; the lease is shorter than the
            // 300 ms election timeout.
            options.lease = Some(LeaseConfig::new(Duration::from_millis(200), 1_000));
            Runtime::start(options, Locks::default())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let acquire = |owner: &str| Command::Acquire {
        lock: "printer".into(),
        owner: owner.into(),
    };
    println!("alice acquires: {:?}", nodes[1].propose(acquire("alice"))?);
    println!("bob acquires:   {:?}", nodes[2].propose(acquire("bob"))?);
    // A lease read: the leader answers alone once a quorum echoed it.
    let leader = (0..3)
        .find(|&i| nodes[i].status().is_ok_and(|s| s.is_leader))
        .ok_or("no leader")?;
    let holder = loop {
        match nodes[leader].read_local(|locks| locks.holder("printer")) {
            Err(ProposeError::NotLeader) => std::thread::sleep(std::time::Duration::from_millis(10)),
            other => break other?,
        }
    };
    println!("node {} (leader, lease read): printer held by {holder:?}", leader + 1);
    let follower = (leader + 1) % 3;
    let refused = nodes[follower].read_local(|locks| locks.holder("printer"));
    println!("node {} (follower, lease read): {refused:?}", follower + 1);
    let release = Command::Release {
        lock: "printer".into(),
        owner: "alice".into(),
    };
    println!("alice releases: {:?}", nodes[0].propose(release)?);
    println!("bob acquires:   {:?}", nodes[2].propose(acquire("bob"))?);
    Ok(())
}
