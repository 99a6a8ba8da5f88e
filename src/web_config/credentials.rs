//! Who may call promgate: basic-auth users (bcrypt), bearer tokens (SHA-256)
//! and their roles.
//!
//! **Equal time for every wrong guess.** A basic-auth attempt for a user
//! that does not exist runs bcrypt against a dummy hash of the highest cost
//! configured, through the same code as a known user with a wrong password,
//! so the answer's timing does not tell which users exist (exporter-toolkit
//! does the same with a fixed cost-10 dummy). A bearer token is hashed once
//! and compared, in constant time, with every configured digest; nothing
//! stops early.
//!
//! **A cache of verdicts**, as exporter-toolkit keeps one: a sender that
//! makes 100 requests a second pays one bcrypt run, not 100. Entries are
//! keyed by an HMAC-SHA256 (under a key drawn at start) of the user and the
//! password, so no password is held in memory; the cache belongs to one
//! loaded config, so a reload that changes a hash starts afresh. Failures
//! are cached too (a sender stuck on an old password costs one run), in a
//! map of their own so that guesses cannot evict the successes.
//!
//! **bcrypt runs one at a time**, off the async runtime: each run takes a
//! core for tens of milliseconds, so a flood of guesses takes at most one
//! core, and requests answered from the cache never wait behind it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;
use ring::hmac;
use tokio::sync::Semaphore;

use super::Error;

/// Most cached verdicts of each kind; a full map is emptied and starts over.
const CACHE_ENTRIES: usize = 1024;

/// The highest bcrypt cost a configured hash may have. Checks run one at a
/// time and unknown users are checked at the highest configured cost, so one
/// costly hash would delay every login: cost 14 already takes about a
/// second, and each step above doubles it.
pub const MAX_BCRYPT_COST: u32 = 14;

/// A bcrypt hash that matches no password, used for unknown users. Only its
/// cost (`{cost}` below) matters: verifying any password against it runs
/// the full key schedule and fails.
const DUMMY_SALT_AND_HASH: &str = "QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// What a caller may do. A name with no `roles:` entry has both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `GET` and `HEAD`: `/metrics`, `/-/metrics`, the query APIs, health.
    Read,
    /// Every other method: remote write, the push API, deletions.
    Write,
}

impl Role {
    fn parse(s: &str) -> Option<Role> {
        match s {
            "read" => Some(Role::Read),
            "write" => Some(Role::Write),
            _ => None,
        }
    }
}

/// An authenticated caller: a user or token name and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user or token name from the config.
    pub name: Arc<str>,
    read: bool,
    write: bool,
}

impl Principal {
    /// Whether this caller holds `role`.
    pub fn may(&self, role: Role) -> bool {
        match role {
            Role::Read => self.read,
            Role::Write => self.write,
        }
    }
}

/// Why a request was not authenticated. For logs and tests only: the client
/// is told no more than "unauthorized", so it cannot learn which users exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization` header.
    Missing,
    /// A header that is not `Basic <base64 user:password>` nor `Bearer <token>`.
    Malformed,
    /// A scheme the config has no credentials for (e.g. `Bearer` with no tokens).
    UnsupportedScheme,
    /// A user the config does not name.
    UnknownUser,
    /// A known user with a wrong password.
    WrongPassword {
        /// The user (names are not secrets; the password is never kept).
        user: Arc<str>,
    },
    /// A token that matches no configured digest.
    UnknownToken,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Missing => f.write_str("no credentials"),
            Denied::Malformed => f.write_str("malformed Authorization header"),
            Denied::UnsupportedScheme => f.write_str("unsupported authorization scheme"),
            Denied::UnknownUser => f.write_str("unknown user"),
            Denied::WrongPassword { user } => write!(f, "wrong password for user {user:?}"),
            Denied::UnknownToken => f.write_str("unknown bearer token"),
        }
    }
}

struct User {
    principal: Principal,
    hash: String,
}

struct Token {
    principal: Principal,
    digest: [u8; 32],
}

/// Verdicts already reached, keyed by HMAC(user, password).
#[derive(Default)]
struct Cache {
    allowed: HashMap<[u8; 32], Principal>,
    denied: HashMap<[u8; 32], Denied>,
}

/// The users and tokens of one loaded config, and the verdicts cached for
/// them.
pub struct Credentials {
    users: HashMap<String, User>,
    tokens: Vec<Token>,
    /// A hash of the highest configured cost that no password matches.
    dummy_hash: String,
    cache_key: hmac::Key,
    cache: Mutex<Cache>,
    /// One bcrypt run at a time.
    bcrypt: Arc<Semaphore>,
    /// bcrypt runs so far (`promgate_auth_bcrypt_runs_total` when served).
    runs: Counter,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: hashes and digests stay out of logs.
        let mut users: Vec<_> = self.users.keys().collect();
        users.sort();
        f.debug_struct("Credentials")
            .field("users", &users)
            .field(
                "tokens",
                &self
                    .tokens
                    .iter()
                    .map(|t| &t.principal.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Validates the config's `basic_auth_users` (name: bcrypt hash),
    /// `authorization_tokens` (name: hex SHA-256 of the token) and `roles`
    /// (name: list of `read`, `write`).
    pub(super) fn new(
        users: BTreeMap<String, String>,
        tokens: BTreeMap<String, String>,
        roles: BTreeMap<String, Vec<String>>,
    ) -> Result<Self, Error> {
        let mut parsed_roles = HashMap::new();
        for (name, list) in roles {
            if !users.contains_key(&name) && !tokens.contains_key(&name) {
                // A misspelt name would otherwise leave the real one with
                // every role.
                return Err(Error::new(format!(
                    "roles: {name:?} is neither in basic_auth_users nor in authorization_tokens"
                )));
            }
            let mut read = false;
            let mut write = false;
            for role in &list {
                match Role::parse(role) {
                    Some(Role::Read) => read = true,
                    Some(Role::Write) => write = true,
                    None => {
                        return Err(Error::new(format!(
                            "roles: {name:?} has {role:?}; the roles are read and write"
                        )));
                    }
                }
            }
            parsed_roles.insert(name, (read, write));
        }
        let principal = |name: &str| {
            let (read, write) = parsed_roles.get(name).copied().unwrap_or((true, true));
            Principal {
                name: Arc::from(name),
                read,
                write,
            }
        };
        let mut max_cost = 0;
        let mut by_name = HashMap::with_capacity(users.len());
        for (name, hash) in users {
            let parts: bcrypt::HashParts = hash.parse().map_err(|e| {
                Error::new(format!(
                    "basic_auth_users: the hash of {name:?} is not a bcrypt hash ({e})"
                ))
            })?;
            if parts.get_cost() < 4 {
                return Err(Error::new(format!(
                    "basic_auth_users: the hash of {name:?} has bcrypt cost {}, below 4, the least bcrypt defines: \
                     no password would ever match it; make it with htpasswd -nBC 10",
                    parts.get_cost()
                )));
            }
            if parts.get_cost() > MAX_BCRYPT_COST {
                return Err(Error::new(format!(
                    "basic_auth_users: the hash of {name:?} has bcrypt cost {}, above the {MAX_BCRYPT_COST} promgate accepts \
                     (each check would take 2^{} times a cost-10 one, and checks run one at a time); \
                     make it with htpasswd -nBC 10",
                    parts.get_cost(),
                    parts.get_cost() - 10
                )));
            }
            max_cost = max_cost.max(parts.get_cost());
            let user = User {
                principal: principal(&name),
                hash,
            };
            by_name.insert(name, user);
        }
        let mut parsed_tokens = Vec::with_capacity(tokens.len());
        for (name, hex) in tokens {
            let digest = parse_sha256(&hex).ok_or_else(|| {
                Error::new(format!(
                    "authorization_tokens: {name:?} must be the SHA-256 of the token as 64 hex digits (printf %s \"$TOKEN\" | sha256sum)"
                ))
            })?;
            if parsed_tokens.iter().any(|t: &Token| t.digest == digest) {
                return Err(Error::new(format!(
                    "authorization_tokens: {name:?} has the same token as another name"
                )));
            }
            parsed_tokens.push(Token {
                principal: principal(&name),
                digest,
            });
        }
        let rng = ring::rand::SystemRandom::new();
        let cache_key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map_err(|_| Error::new("cannot draw a random key"))?;
        Ok(Credentials {
            users: by_name,
            tokens: parsed_tokens,
            dummy_hash: format!("$2y${:02}${DUMMY_SALT_AND_HASH}", max_cost.max(4)),
            cache_key,
            cache: Mutex::new(Cache::default()),
            bcrypt: Arc::new(Semaphore::new(1)),
            runs: Counter::default(),
        })
    }

    /// Counts bcrypt runs in `runs` (the self-metric) instead of a counter
    /// of its own.
    pub(super) fn counting_into(mut self, runs: Counter) -> Self {
        self.runs = runs;
        self
    }

    /// Whether the config asks for no authentication at all.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.tokens.is_empty()
    }

    /// Configured basic-auth users.
    pub fn users_len(&self) -> usize {
        self.users.len()
    }

    /// Configured bearer tokens.
    pub fn tokens_len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether a `Basic` challenge should be offered.
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    /// Whether a `Bearer` challenge should be offered.
    pub fn has_tokens(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// bcrypt runs so far (cache misses).
    pub fn bcrypt_runs(&self) -> u64 {
        self.runs.get()
    }

    /// Checks an `Authorization` header value, running bcrypt (when the
    /// cache has no verdict) on the blocking pool, one run at a time.
    pub async fn authenticate(self: Arc<Self>, header: Option<&[u8]>) -> Result<Principal, Denied> {
        let basic = match self.quick(header) {
            Quick::Done(verdict) => return verdict,
            Quick::Basic(b) => b,
        };
        let permit = Arc::clone(&self.bcrypt)
            .acquire_owned()
            .await
            .expect("never closed");
        // Another request may have reached the verdict while this one
        // waited: a sender's burst of first requests costs one run.
        if let Some(verdict) = self.cached(&basic.key) {
            return verdict;
        }
        let this = Arc::clone(&self);
        // The permit goes with the run: a client that hangs up while its
        // password is checked does not let the next run start beside it.
        tokio::task::spawn_blocking(move || {
            let verdict = this.verify(basic);
            drop(permit);
            verdict
        })
        .await
        .unwrap_or(Err(Denied::Malformed))
    }

    /// [`Credentials::authenticate`] on the calling thread (benchmarks, tests).
    pub fn authenticate_blocking(&self, header: Option<&[u8]>) -> Result<Principal, Denied> {
        match self.quick(header) {
            Quick::Done(verdict) => verdict,
            Quick::Basic(basic) => match self.cached(&basic.key) {
                Some(verdict) => verdict,
                None => self.verify(basic),
            },
        }
    }

    /// Everything short of bcrypt: parsing, tokens, the cache.
    fn quick(&self, header: Option<&[u8]>) -> Quick {
        let Some(header) = header else {
            return Quick::Done(Err(Denied::Missing));
        };
        let Some((scheme, rest)) = split_scheme(header) else {
            return Quick::Done(Err(Denied::Malformed));
        };
        if scheme.eq_ignore_ascii_case(b"bearer") {
            if self.tokens.is_empty() {
                return Quick::Done(Err(Denied::UnsupportedScheme));
            }
            return Quick::Done(self.check_token(rest));
        }
        if !scheme.eq_ignore_ascii_case(b"basic") {
            return Quick::Done(Err(Denied::UnsupportedScheme));
        }
        if self.users.is_empty() {
            return Quick::Done(Err(Denied::UnsupportedScheme));
        }
        let Some((user, password)) = decode_basic(rest) else {
            return Quick::Done(Err(Denied::Malformed));
        };
        let mut ctx = hmac::Context::with_key(&self.cache_key);
        ctx.update(&(user.len() as u64).to_le_bytes());
        ctx.update(user.as_bytes());
        ctx.update(&password);
        let mut key = [0; 32];
        key.copy_from_slice(ctx.sign().as_ref());
        if let Some(verdict) = self.cached(&key) {
            return Quick::Done(verdict);
        }
        Quick::Basic(Basic {
            key,
            user,
            password,
        })
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Result<Principal, Denied>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.allowed.get(key) {
            return Some(Ok(p.clone()));
        }
        cache.denied.get(key).map(|d| Err(d.clone()))
    }

    /// The bcrypt run: against the user's hash, or the dummy one for an
    /// unknown user, so both take the same time. Caches the verdict.
    fn verify(&self, basic: Basic) -> Result<Principal, Denied> {
        let user = self.users.get(&basic.user);
        let hash = user.map_or(self.dummy_hash.as_str(), |u| u.hash.as_str());
        let matches = bcrypt::verify(&basic.password, hash).unwrap_or(false);
        self.runs.inc();
        let verdict = match user {
            Some(u) if matches => Ok(u.principal.clone()),
            Some(u) => Err(Denied::WrongPassword {
                user: Arc::clone(&u.principal.name),
            }),
            None => Err(Denied::UnknownUser),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match &verdict {
            Ok(p) => {
                if cache.allowed.len() >= CACHE_ENTRIES {
                    cache.allowed.clear();
                }
                cache.allowed.insert(basic.key, p.clone());
            }
            Err(d) => {
                if cache.denied.len() >= CACHE_ENTRIES {
                    cache.denied.clear();
                }
                cache.denied.insert(basic.key, d.clone());
            }
        }
        verdict
    }

    fn check_token(&self, token: &[u8]) -> Result<Principal, Denied> {
        let token = trim(token);
        if token.is_empty() {
            return Err(Denied::Malformed);
        }
        let presented = super::digest(token);
        // Every digest is compared, whatever matched before.
        let mut found: Option<&Token> = None;
        for t in &self.tokens {
            if constant_time_eq(&t.digest, &presented) {
                found = Some(t);
            }
        }
        found
            .map(|t| t.principal.clone())
            .ok_or(Denied::UnknownToken)
    }
}

enum Quick {
    Done(Result<Principal, Denied>),
    Basic(Basic),
}

struct Basic {
    key: [u8; 32],
    user: String,
    password: Vec<u8>,
}

impl Drop for Basic {
    fn drop(&mut self) {
        // The password does not outlive the check in freed memory.
        self.password.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&self.password);
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// `Scheme rest` → (scheme, rest).
fn split_scheme(header: &[u8]) -> Option<(&[u8], &[u8])> {
    let header = trim(header);
    let space = header.iter().position(|b| *b == b' ')?;
    Some((&header[..space], trim(&header[space + 1..])))
}

/// `base64(user:password)` → (user, password). The user must be UTF-8 (the
/// config's names are); the password may be any bytes.
fn decode_basic(encoded: &[u8]) -> Option<(String, Vec<u8>)> {
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = std::str::from_utf8(&decoded[..colon]).ok()?.to_string();
    Some((user, decoded[colon + 1..].to_vec()))
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> Vec<u8> {
        use base64::Engine as _;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}").into_bytes()
    }

    fn sha256_hex(token: &str) -> String {
        super::super::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn credentials(roles: &[(&str, &[&str])]) -> Credentials {
        let users = BTreeMap::from([
            ("alice".to_string(), bcrypt::hash("wonderland", 4).unwrap()),
            ("scraper".to_string(), bcrypt::hash("s3cret", 5).unwrap()),
        ]);
        let tokens = BTreeMap::from([("legacy".to_string(), sha256_hex("tok-123"))]);
        let roles = roles
            .iter()
            .map(|(n, r)| (n.to_string(), r.iter().map(|s| s.to_string()).collect()))
            .collect();
        Credentials::new(users, tokens, roles).unwrap()
    }

    #[test]
    fn basic_and_bearer_verdicts() {
        let c = credentials(&[]);
        let ok = c
            .authenticate_blocking(Some(&basic("alice", "wonderland")))
            .unwrap();
        assert_eq!(&*ok.name, "alice");
        assert!(ok.may(Role::Read) && ok.may(Role::Write));
        assert_eq!(
            c.authenticate_blocking(Some(&basic("alice", "wrong"))),
            Err(Denied::WrongPassword {
                user: Arc::from("alice")
            })
        );
        assert_eq!(
            c.authenticate_blocking(Some(&basic("mallory", "wonderland"))),
            Err(Denied::UnknownUser)
        );
        assert_eq!(c.authenticate_blocking(None), Err(Denied::Missing));
        for bad in [&b"Basic"[..], b"Basic !!!!", b"Basic YWxpY2U=", b"Digest x"] {
            assert!(c.authenticate_blocking(Some(bad)).is_err(), "{bad:?}");
        }
        let t = c.authenticate_blocking(Some(b"Bearer tok-123")).unwrap();
        assert_eq!(&*t.name, "legacy");
        assert_eq!(
            c.authenticate_blocking(Some(b"bearer  tok-1234 ")),
            Err(Denied::UnknownToken)
        );
    }

    #[test]
    fn unknown_users_take_the_bcrypt_path_at_the_highest_cost() {
        let c = credentials(&[]);
        // The dummy has the cost of the costliest configured hash, so an
        // unknown user costs what the slowest known user costs.
        let parts: bcrypt::HashParts = c.dummy_hash.parse().unwrap();
        assert_eq!(parts.get_cost(), 5);
        let _ = c.authenticate_blocking(Some(&basic("nobody", "x")));
        let _ = c.authenticate_blocking(Some(&basic("alice", "x")));
        assert_eq!(c.bcrypt_runs(), 2);
    }

    #[test]
    fn verdicts_are_cached_per_user_and_password() {
        let c = credentials(&[]);
        for _ in 0..50 {
            c.authenticate_blocking(Some(&basic("alice", "wonderland")))
                .unwrap();
            let _ = c.authenticate_blocking(Some(&basic("alice", "old-password")));
        }
        assert_eq!(c.bcrypt_runs(), 2);
        // Another password is another entry: no prefix or collision games.
        let _ = c.authenticate_blocking(Some(&basic("alice", "wonderlan")));
        assert_eq!(c.bcrypt_runs(), 3);
    }

    #[test]
    fn roles_and_their_validation() {
        let c = credentials(&[("scraper", &["read"]), ("legacy", &["write"])]);
        let s = c
            .authenticate_blocking(Some(&basic("scraper", "s3cret")))
            .unwrap();
        assert!(s.may(Role::Read) && !s.may(Role::Write));
        let t = c.authenticate_blocking(Some(b"Bearer tok-123")).unwrap();
        assert!(!t.may(Role::Read) && t.may(Role::Write));
        let users = BTreeMap::from([("a".to_string(), bcrypt::hash("p", 4).unwrap())]);
        for roles in [
            BTreeMap::from([("b".to_string(), vec!["read".to_string()])]),
            BTreeMap::from([("a".to_string(), vec!["admin".to_string()])]),
        ] {
            assert!(Credentials::new(users.clone(), BTreeMap::new(), roles).is_err());
        }
    }

    #[test]
    fn config_values_are_checked() {
        let bad_hash = BTreeMap::from([("a".to_string(), "plaintext".to_string())]);
        let e = Credentials::new(bad_hash, BTreeMap::new(), BTreeMap::new()).unwrap_err();
        assert!(!e.to_string().contains("plaintext"), "{e}");
        let bad_token = BTreeMap::from([("t".to_string(), "tok-123".to_string())]);
        let e = Credentials::new(BTreeMap::new(), bad_token, BTreeMap::new()).unwrap_err();
        assert!(!e.to_string().contains("tok-123"), "{e}");
    }
}
