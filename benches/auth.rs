//! What access control costs a request: `cargo bench --bench auth`.
//!
//! - `auth/basic cached`: a sender's request once its password was verified
//!   (an HMAC and a map lookup).
//! - `auth/basic uncached known user` and `.../unknown user`: a bcrypt run at
//!   cost 10 (`htpasswd -nBC 10`), what every request would cost without the
//!   cache; the two take the same time by construction (the unknown user is
//!   checked against a dummy hash of the same cost).
//! - `auth/bearer`: a token (SHA-256 and a constant-time comparison with each
//!   configured digest).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};

use promgate::web_config::{self, Credentials};

fn basic(user: &str, password: &str) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}").into_bytes()
}

fn credentials() -> std::sync::Arc<Credentials> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    let token = ring::digest::digest(&ring::digest::SHA256, b"tok-123");
    let hex: String = token.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let yaml = format!(
        "basic_auth_users:\n  prometheus: {}\nauthorization_tokens:\n  legacy: {hex}\n",
        bcrypt::hash("remote-write-secret", 10).unwrap()
    );
    std::fs::write(&path, yaml).unwrap();
    let (config, _) = web_config::load(&path);
    config.unwrap().credentials
}

fn benches(c: &mut Criterion) {
    let creds = credentials();
    let mut group = c.benchmark_group("auth");
    let right = basic("prometheus", "remote-write-secret");
    assert!(creds.authenticate_blocking(Some(&right)).is_ok());
    group.bench_function("basic cached", |b| {
        b.iter(|| creds.authenticate_blocking(Some(black_box(&right))))
    });
    group.bench_function("bearer", |b| {
        b.iter(|| creds.authenticate_blocking(Some(black_box(b"Bearer tok-123"))))
    });
    group.sample_size(10);
    // A new password each time: never in the cache, so each is a bcrypt run.
    let n = AtomicU64::new(0);
    for (name, user) in [
        ("basic uncached known user", "prometheus"),
        ("basic uncached unknown user", "mallory"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let password = format!("guess-{}", n.fetch_add(1, Ordering::Relaxed));
                let header = basic(user, &password);
                assert!(creds.authenticate_blocking(Some(&header)).is_err());
            })
        });
    }
    group.finish();
}

criterion_group!(auth, benches);
criterion_main!(auth);
