//! Keys and values of configured sizes through three in-process nodes
//! (configured as a TOML file would configure them): values above the 1
//! KiB of old replicate to every node, and a value above a node's
//! configured maximum is refused, by the client before sending and by the
//! node, with an error that names that maximum; a value of the default
//! maximum, 1 MiB, replicates.

use paxos_service::cluster::{BlockingClient, CallError, ClientOptions};
use paxos_service::config::{FileConfig, NodeConfig, NodeFlags};
use paxos_service::protocol::{ErrorKind, SizeLimits, DEFAULT_MAX_KEY};
use paxos_service::service::Service;
use paxos_service::store::Store;
use paxos_std::transport::{free_loopback_addrs, ClusterKey};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Three nodes in this process.
struct Nodes {
    services: Vec<Service>,
    _dir: tempfile::TempDir,
}

impl Nodes {
    /// Three nodes whose files say `max_value_bytes` (when given).
    fn start(max_value_bytes: Option<usize>) -> Nodes {
        let dir = tempfile::tempdir().unwrap();
        let addrs = free_loopback_addrs(3).unwrap();
        let services = (0..3)
            .map(|i| {
                let file = FileConfig {
                    id: Some(i as u8 + 1),
                    listen: Some(addrs[i]),
                    peers: Some(
                        (0..3)
                            .filter(|&j| j != i)
                            .map(|j| format!("{}={}", j + 1, addrs[j]))
                            .collect(),
                    ),
                    data_dir: Some(dir.path().join(format!("node{}", i + 1))),
                    client_listen: Some("127.0.0.1:0".parse().unwrap()),
                    max_value_bytes,
                    ..FileConfig::default()
                };
                let config = NodeConfig::merge(file, &NodeFlags::default()).unwrap();
                Service::start(&config, ClusterKey::insecure_default()).unwrap()
            })
            .collect();
        Nodes { services, _dir: dir }
    }

    fn client_addrs(&self) -> Vec<SocketAddr> {
        self.services.iter().map(|s| s.client_addr().unwrap()).collect()
    }

    /// A client of the three with `sizes`.
    fn client(&self, sizes: SizeLimits) -> BlockingClient {
        BlockingClient::connect(ClientOptions {
            sizes,
            ..ClientOptions::new(self.client_addrs())
        })
        .unwrap()
    }

    /// Waits (bounded) until every node's own state holds `value` for
    /// `key`.
    fn wait_everywhere(&self, key: &[u8], value: &[u8]) {
        let end = Instant::now() + Duration::from_secs(10);
        for (i, service) in self.services.iter().enumerate() {
            loop {
                let key = key.to_vec();
                let held = service
                    .runtime()
                    .read_stale(move |s: &Store| s.get(&key).map(<[u8]>::to_vec))
                    .unwrap();
                if held.as_deref() == Some(value) {
                    break;
                }
                assert!(Instant::now() < end, "node {} does not hold the value", i + 1);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn shutdown(self) {
        for service in self.services {
            service.shutdown().unwrap();
        }
    }
}

/// The error of a call refused as too large.
fn too_large(result: Result<impl std::fmt::Debug, CallError>) -> String {
    match result {
        Err(CallError::Refused(e)) if e.kind == ErrorKind::TooLarge => e.message,
        other => panic!("not refused as too large: {other:?}"),
    }
}

#[test]
fn a_value_above_the_old_limit_replicates_to_every_node() {
    let nodes = Nodes::start(None);
    let client = nodes.client(SizeLimits::DEFAULT);
    let value: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    assert_eq!(client.put(b"k", &value).unwrap(), None);
    assert_eq!(client.get(b"k").unwrap(), Some(value.clone()));
    nodes.wait_everywhere(b"k", &value);
    // A register too, of the longest key (the command under 3,900 bytes).
    let key = vec![b'r'; DEFAULT_MAX_KEY];
    let value = &value[..2000];
    let asked = client.ask(&key, value).unwrap();
    assert!(asked.won && asked.value == value);
    assert_eq!(client.register(&key).unwrap().as_deref(), Some(value));
    nodes.shutdown();
}

#[test]
fn a_value_above_the_configured_maximum_is_refused_naming_it() {
    let nodes = Nodes::start(Some(2000));
    let says = "a value of 2001 bytes is longer than the maximum, 2000 bytes";
    // A client given the nodes' sizes refuses it before sending.
    let matching = nodes.client(SizeLimits::new(DEFAULT_MAX_KEY, 2000).unwrap());
    assert_eq!(too_large(matching.put(b"k", &[1; 2001])), says);
    // A client with the default 1 MiB sends it: the node refuses it.
    let default = nodes.client(SizeLimits::DEFAULT);
    assert_eq!(too_large(default.put(b"k", &[1; 2001])), says);
    assert_eq!(too_large(default.cas(b"k", None, Some(&[1; 2001]))), says);
    assert_eq!(too_large(default.ask(b"k", &[1; 2001])), says);
    assert_eq!(default.get(b"k").unwrap(), None, "nothing was applied");
    // The maximum itself is a value.
    assert_eq!(default.put(b"k", &[2; 2000]).unwrap(), None);
    assert_eq!(matching.get(b"k").unwrap(), Some(vec![2; 2000]));
    nodes.shutdown();
}

/// A value of the default maximum (1 MiB) is put, read back and reaches
/// every node.
#[test]
fn replicates_a_one_mib_value() {
    let nodes = Nodes::start(None);
    let client = nodes.client(SizeLimits::DEFAULT);
    let value: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    assert_eq!(value.len(), SizeLimits::DEFAULT.max_value());
    assert_eq!(client.put(b"big", &value).unwrap(), None);
    assert_eq!(client.get(b"big").unwrap(), Some(value.clone()));
    nodes.wait_everywhere(b"big", &value);
    nodes.shutdown();
}
