//! Every library (both forms of ours) commits what it was asked to under
//! every mode, and its nodes end with the same applied sequence (checked
//! by the harness).

use paxos_bench::{run, Lib, MODES};

#[test]
fn every_library_commits_the_requested_count_in_every_mode_and_its_nodes_agree() {
    // Replicas with 4 KiB values are built on the stack: give them room.
    std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(|| {
            for mode in MODES {
                for lib in Lib::ALL {
                    let commits = 300;
                    let totals =
                        run(lib, mode, commits).unwrap_or_else(|e| panic!("{} {}: {e}", lib.name(), mode.name));
                    assert_eq!(totals.commits, commits, "{} {}", lib.name(), mode.name);
                    assert!(totals.messages > 0 && totals.bytes > 0, "{} {}", lib.name(), mode.name);
                    if mode.window == 1 {
                        // Every commit needs a round trip to a quorum.
                        assert!(
                            totals.messages >= 2 * commits,
                            "{} {}: {totals:?}",
                            lib.name(),
                            mode.name
                        );
                    }
                }
            }
        })
        .expect("spawn")
        .join()
        .expect("no harness failed");
}
