//! What a cluster's name says about its traffic: environment and region.

/// The environments of the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Env {
    /// Development: a trickle of traffic.
    Dev,
    /// Beta: a fraction of production.
    Beta,
    /// Production: full traffic.
    Prod,
}

/// A cluster's profile, derived from a name like `us-east-1-eks-01-prod`.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// The cluster name as requested.
    pub name: String,
    /// The environment (the name's last part; `prod` when unknown).
    pub env: Env,
    /// The AWS region (the name's prefix; `us-east-1` when unknown).
    pub region: &'static str,
    /// The region's offset from UTC in hours, which places its daily peak.
    pub utc_offset_hours: f64,
}

/// The regions the exporter knows, with their UTC offsets (standard time).
pub const REGIONS: [(&str, f64); 4] = [
    ("us-east-1", -5.0),
    ("eu-west-1", 0.0),
    ("ap-southeast-1", 8.0),
    ("ap-northeast-1", 9.0),
];

/// The cluster served when `/metrics` is asked without `?cluster=`.
pub const DEFAULT_CLUSTER: &str = "default";

/// Is `name` acceptable as a cluster name (1-64 of `[A-Za-z0-9_.-]`)?
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

impl Profile {
    /// The profile of cluster `name`.
    pub fn of(name: &str) -> Profile {
        let (region, utc_offset_hours) = REGIONS
            .iter()
            .copied()
            .find(|(r, _)| name.starts_with(r))
            .unwrap_or(REGIONS[0]);
        let env = if name.ends_with("-dev") {
            Env::Dev
        } else if name.ends_with("-beta") {
            Env::Beta
        } else {
            Env::Prod
        };
        Profile {
            name: name.to_string(),
            env,
            region,
            utc_offset_hours,
        }
    }

    /// Traffic relative to a production cluster.
    pub fn traffic_factor(&self) -> f64 {
        match self.env {
            Env::Prod => 1.0,
            Env::Beta => 0.3,
            Env::Dev => 0.12,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_env_and_region() {
        let p = Profile::of("ap-southeast-1-eks-01-dev");
        assert_eq!(
            (p.env, p.region, p.utc_offset_hours),
            (Env::Dev, "ap-southeast-1", 8.0)
        );
        let p = Profile::of("ap-northeast-1-eks-01-beta");
        assert_eq!((p.env, p.region), (Env::Beta, "ap-northeast-1"));
        let p = Profile::of("default");
        assert_eq!((p.env, p.region), (Env::Prod, "us-east-1"));
        assert!(is_valid_name("us-east-1-eks-01-prod"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name(""));
    }
}
