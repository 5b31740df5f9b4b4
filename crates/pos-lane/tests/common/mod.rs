//! A whole simulated lane for service tests: virtual devices, the terminal service with a
//! journal in a temp dir, and the fake host on 127.0.0.1 reached through the real TCP client.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use pos_acquirer::TcpAcquirer;
use pos_acquirer::sim::{EntryState, FakeHost, HostRules};
use pos_terminal::inject::Injection;
use pos_terminal::{CardEntry, Config, State, Terminal, TxnRequest, TxnResult};

pub const VISA_PAN: &str = "4761739001010010";

pub struct Rig {
    pub dir: tempfile::TempDir,
    pub host: Arc<FakeHost>,
    pub sim: pos_lane::SimLane,
    pub terminal: Terminal,
}

pub fn rig_with(tweak: impl FnOnce(&mut Config)) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(FakeHost::start("127.0.0.1:0", HostRules::default()).unwrap());
    let mut config = Config {
        journal: Some(dir.path().join("journal.sqlite")),
        card_timeout_ms: 2_000,
        ..Config::default()
    };
    config.acquirer.address = host.addr().to_string();
    config.acquirer.response_timeout_ms = 700;
    config.acquirer.connect_timeout_ms = 700;
    tweak(&mut config);
    // The card the reader URI names (default: the visa profile).
    let lane = pos_lane::open(&config.devices, None).unwrap();
    let acquirer = TcpAcquirer::new(config.acquirer_settings(&config.acquirer.address).unwrap());
    let mut terminal = Terminal::open(config, lane.devices, Box::new(acquirer)).unwrap();
    terminal.set_ca_keys(pos_emv::profile_card::test_and_sim_ca_keys().unwrap());
    Rig {
        dir,
        host,
        sim: lane.sim.unwrap(),
        terminal,
    }
}

pub fn rig() -> Rig {
    rig_with(|_| {})
}

impl Rig {
    /// One transaction with injections, then the lane is healthy again (host up, faults
    /// cleared, card back in, printer fixed).
    pub fn run(&mut self, req: &TxnRequest, injections: &[&str]) -> TxnResult {
        let inj: Vec<Injection> = injections.iter().map(|s| s.parse().unwrap()).collect();
        if req.entry == CardEntry::Swipe {
            self.sim.swipe(self.sim.card()).unwrap();
        }
        let arm = pos_lane::arm_fake_host(self.host.clone(), &inj);
        let mut hook = self.sim.hook(inj, Some(arm));
        let r = self.terminal.run(req, &mut hook).unwrap();
        self.heal();
        r
    }

    pub fn sale(&mut self, amount: u64, injections: &[&str]) -> TxnResult {
        self.run(&TxnRequest::sale(amount), injections)
    }

    pub fn heal(&mut self) {
        self.host.set_down(false).unwrap();
        self.host.clear_faults();
        self.sim.reset(self.terminal.devices_mut()).unwrap();
    }

    /// The money invariant. Every authorization the host approved and did not reverse is a
    /// transaction the journal says stands (completed, receipt owed) or is still being
    /// reversed (pending, stuck); every transaction the journal says stands was approved
    /// and not reversed by the host. With `drained`, nothing may be pending.
    pub fn check_invariant(&self, drained: bool) {
        let ledger = self.host.ledger();
        let journal = self.terminal.journal().all().unwrap();
        let by_stan: BTreeMap<u32, &pos_terminal::Txn> = journal
            .iter()
            .filter_map(|t| t.stan.map(|s| (s, t)))
            .collect();
        for e in ledger.approved_not_reversed() {
            let t = by_stan
                .get(&e.stan)
                .unwrap_or_else(|| panic!("host approved STAN {} the journal never sent", e.stan));
            assert!(
                matches!(
                    t.state,
                    State::Completed
                        | State::ReceiptOwed
                        | State::ReversalPending
                        | State::ReversalStuck
                ),
                "host approved txn {} (STAN {}) but the journal says {}",
                t.id,
                e.stan,
                t.state
            );
            if drained {
                assert!(
                    matches!(
                        t.state,
                        State::Completed | State::ReceiptOwed | State::ReversalStuck
                    ),
                    "txn {} still {} after draining",
                    t.id,
                    t.state
                );
            }
        }
        for t in &journal {
            assert!(t.state.is_resting(), "txn {} left {}", t.id, t.state);
            if matches!(t.state, State::Completed | State::ReceiptOwed) {
                let e = ledger
                    .entries
                    .iter()
                    .find(|e| Some(e.stan) == t.stan)
                    .unwrap_or_else(|| panic!("txn {} stands but the host has no record", t.id));
                assert!(
                    matches!(
                        e.state,
                        EntryState::Approved | EntryState::Voided | EntryState::Completed
                    ),
                    "txn {} stands but the host says {:?}",
                    t.id,
                    e.state
                );
            }
            if t.state == State::Reversed {
                if let Some(e) = ledger.entries.iter().find(|e| Some(e.stan) == t.stan) {
                    assert!(
                        !matches!(e.state, EntryState::Approved),
                        "txn {} reversed in the journal but the host still has it approved",
                        t.id
                    );
                }
            }
        }
    }
}
