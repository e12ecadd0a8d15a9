//! `uringtrace agent`'s startup errors: they come before anything is loaded, so they
//! need no root.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::Command;

const UT: &str = env!("CARGO_BIN_EXE_uringtrace");

#[test]
fn a_port_in_use_is_a_clear_error_at_startup() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(UT)
        .args(["agent", "--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("uringtrace: error: cannot listen on {addr}: ")),
        "{err}"
    );
}

#[test]
fn a_bad_address_is_a_usage_error() {
    let out = Command::new(UT)
        .args(["agent", "--listen", "localhost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid value 'localhost' for '--listen <ADDR>'"),
        "{err}"
    );
}
