//! The real binary: it serves, and stops cleanly on SIGTERM.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use common::*;

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn mock_exporter_stops_cleanly_on_sigterm() {
    let (mut p, addr) = spawn_mock_exporter(&[]);
    assert!(http_get(addr, "/-/healthy").starts_with("HTTP/1.1 200"));
    assert!(
        Command::new("kill")
            .args(["-TERM", &p.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(p.child.wait().unwrap().code(), Some(0));
}
