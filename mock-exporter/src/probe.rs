//! Typical round-trip times between the stack's AWS regions, so blackbox
//! probes measure something meaningful when the whole stack runs on one host.

use std::time::Duration;

use crate::cluster::REGIONS;

/// Round-trip times in milliseconds between region pairs (either direction),
/// rounded from public inter-region latency measurements.
const RTT_MS: [(&str, &str, f64); 6] = [
    ("us-east-1", "eu-west-1", 70.0),
    ("us-east-1", "ap-southeast-1", 215.0),
    ("us-east-1", "ap-northeast-1", 150.0),
    ("eu-west-1", "ap-southeast-1", 160.0),
    ("eu-west-1", "ap-northeast-1", 205.0),
    ("ap-southeast-1", "ap-northeast-1", 70.0),
];

/// Round trip within one region.
const SAME_REGION_MS: f64 = 1.0;

/// Relative jitter applied around the table's value.
pub const JITTER: f64 = 0.1;

/// The typical round-trip time between two known regions.
pub fn typical_rtt(from: &str, to: &str) -> Option<Duration> {
    let known = |r: &str| REGIONS.iter().any(|(k, _)| *k == r);
    if !known(from) || !known(to) {
        return None;
    }
    let ms = if from == to {
        SAME_REGION_MS
    } else {
        RTT_MS
            .iter()
            .find(|(a, b, _)| (*a == from && *b == to) || (*a == to && *b == from))
            .map(|(_, _, ms)| *ms)?
    };
    Some(Duration::from_secs_f64(ms / 1000.0))
}

/// The range a jittered delay falls in.
pub fn delay_range(from: &str, to: &str) -> Option<(Duration, Duration)> {
    let t = typical_rtt(from, to)?;
    Some((t.mul_f64(1.0 - JITTER), t.mul_f64(1.0 + JITTER)))
}

/// The known region names, for error messages.
pub fn known_regions() -> String {
    REGIONS
        .iter()
        .map(|(r, _)| *r)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_symmetric_and_complete() {
        for (a, _) in REGIONS {
            for (b, _) in REGIONS {
                assert_eq!(typical_rtt(a, b), typical_rtt(b, a));
                assert!(typical_rtt(a, b).is_some(), "{a} -> {b}");
            }
        }
        assert_eq!(typical_rtt("us-east-1", "mars-1"), None);
    }
}
