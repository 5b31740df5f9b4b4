//! Link scenarios: against the rig's loopback links when `POS_HIL_RIG` names a rig, else
//! against virtual echo peers (a pseudo-terminal and a TCP listener on 127.0.0.1).

use std::net::TcpListener;
use std::time::Duration;

use hil_tests::Rig;
use pos_link::{Link, PtyPair, SerialLink, SerialSettings, TcpLink, loopback};

fn rig() -> Option<Rig> {
    Rig::from_env().unwrap_or_else(|e| {
        panic!(
            "the rig named by {} cannot be used: {e}",
            hil_tests::RIG_ENV
        )
    })
}

#[test]
fn loopback_links_echo_every_byte_value() {
    match rig() {
        Some(rig) => {
            let uris = rig.loopback_uris();
            assert!(!uris.is_empty(), "the rig names no loopback links");
            for uri in uris {
                let mut link = pos_link::open(&uri, Duration::from_secs(3))
                    .unwrap_or_else(|e| panic!("{uri}: cannot open: {e} (hint: {:?})", e.hint()));
                let report = loopback::run(&mut link, rig.links.bytes, rig.timeout());
                println!("{report}");
                assert!(report.passed(), "{report}");
            }
        }
        None => {
            println!("no rig ({} unset): virtual echo peers", hil_tests::RIG_ENV);
            let (master, slave) = PtyPair::open().expect("pty").into_parts();
            let echo = loopback::spawn_echo(master, Duration::from_secs(2));
            let mut port =
                SerialLink::open(&slave, SerialSettings::default()).expect("open pty slave");
            let report = loopback::run(&mut port, 4096, Duration::from_secs(2));
            println!("{report}");
            assert!(report.passed(), "{report}");
            drop(port);
            echo.join().expect("echo thread").expect("echo");

            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = l.local_addr().expect("addr").port();
            let server = std::thread::spawn(move || {
                let (s, _) = l.accept().expect("accept");
                let link = TcpLink::from_stream(s).expect("wrap");
                loopback::spawn_echo(link, Duration::from_secs(2)).join()
            });
            let mut link =
                TcpLink::connect("127.0.0.1", port, Duration::from_secs(2)).expect("connect");
            let report = loopback::run(&mut link, 4096, Duration::from_secs(2));
            println!("{report}");
            assert!(report.passed(), "{report}");
            assert_eq!(link.target(), format!("tcp:127.0.0.1:{port}"));
            drop(link);
            server
                .join()
                .expect("server")
                .expect("echo thread")
                .expect("echo");
        }
    }
}
