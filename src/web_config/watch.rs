//! The web config in force, and its re-reading.
//!
//! The watcher re-reads the config file and every file it names (the
//! [`Sources`] of the last load) every `--web.config.reload-interval`, and
//! on SIGHUP, and reloads when any of them holds something else (a content
//! hash, so a rewrite within one mtime tick, or a Kubernetes secret's
//! symlink swap, is seen too). A config that fails to load is logged and
//! counted and the last good one stays in force: a broken file never opens
//! the door. Turning TLS on or off needs a restart (the listener's protocol
//! is fixed at start), and so does removing every user and token (an empty
//! file is valid, and a file caught while being rewritten may be empty):
//! a reload that would do either fails the same way.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;

use super::{Error, Sources, WebConfig, load_counting};
use crate::self_metrics::{ResultLabels, SelfMetrics};

/// The loaded web config, swapped whole on a successful reload.
pub struct WebConfigHandle {
    path: PathBuf,
    current: RwLock<Arc<WebConfig>>,
    /// What the last attempt read, good or not: a broken file is retried
    /// (and counted) once per change, not once per poll.
    sources: Mutex<Sources>,
    metrics: Arc<SelfMetrics>,
}

impl std::fmt::Debug for WebConfigHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfigHandle")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl WebConfigHandle {
    /// Loads the web config at `path` for start-up.
    ///
    /// # Errors
    ///
    /// The file, or a file it names, cannot be read or is invalid: the
    /// process must not start (an open door is worse than no service).
    pub fn load(path: &Path, metrics: Arc<SelfMetrics>) -> Result<Arc<Self>, Error> {
        let (result, sources) = load_counting(path, metrics.auth_bcrypt_runs.clone());
        let config = result?;
        for result in ["success", "failure"] {
            metrics
                .web_config_reloads
                .get_or_create(&ResultLabels { result })
                .inc_by(0);
        }
        metrics.web_config_last_reload_successful.set(1);
        metrics
            .web_config_last_reload_success_time
            .set(unix_seconds());
        Ok(Arc::new(WebConfigHandle {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(config)),
            sources: Mutex::new(sources),
            metrics,
        }))
    }

    /// The config in force.
    pub fn current(&self) -> Arc<WebConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reloads when any file of the last attempt changed; `None` when
    /// nothing did.
    pub fn reload_if_changed(&self) -> Option<Result<(), Error>> {
        let changed = self
            .sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .changed();
        changed.then(|| self.reload())
    }

    /// Loads the file again and, when it is valid, puts it in force;
    /// otherwise keeps the config in force. Logged and counted either way.
    pub fn reload(&self) -> Result<(), Error> {
        let (result, sources) = load_counting(&self.path, self.metrics.auth_bcrypt_runs.clone());
        *self.sources.lock().unwrap_or_else(|e| e.into_inner()) = sources;
        let result = result.and_then(|config| {
            let was = self.current();
            let refuse = |what: &str| {
                Err(Error::new(format!(
                    "web config {}: {what} needs a restart",
                    self.path.display()
                )))
            };
            if config.tls.is_some() != was.tls.is_some() {
                return refuse(if was.tls.is_some() {
                    "turning TLS off"
                } else {
                    "turning TLS on"
                });
            }
            // A file caught half-written (or emptied by mistake) must not
            // open the door until the next poll.
            if config.credentials.is_empty() && !was.credentials.is_empty() {
                return refuse("removing every user and token");
            }
            Ok(config)
        });
        let outcome = match result {
            Ok(config) => {
                tracing::info!(
                    file = %self.path.display(),
                    config = %config.summary(),
                    "web config reloaded"
                );
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
                self.metrics.web_config_last_reload_successful.set(1);
                self.metrics
                    .web_config_last_reload_success_time
                    .set(unix_seconds());
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "web config reload failed; the last good config stays in force");
                self.metrics.web_config_last_reload_successful.set(0);
                Err(e)
            }
        };
        let result = if outcome.is_ok() {
            "success"
        } else {
            "failure"
        };
        self.metrics
            .web_config_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
        outcome
    }

    /// Checks for changes every `interval` (never when `None`) and reloads
    /// on SIGHUP.
    pub fn spawn_watcher(self: &Arc<Self>, interval: Option<Duration>) -> JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = interval.map(|i| {
                let mut t = tokio::time::interval_at(tokio::time::Instant::now() + i, i);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            loop {
                let forced = tokio::select! {
                    () = async { tick.as_mut().expect("guarded").tick().await; }, if tick.is_some() => false,
                    Some(()) = async { hup.as_mut().expect("guarded").recv().await }, if hup.is_some() => true,
                    else => return,
                };
                // Reading and hashing a few small files, and building a TLS
                // config, is blocking work: off the runtime's threads.
                let this = Arc::clone(&this);
                let _ = tokio::task::spawn_blocking(move || {
                    if forced {
                        tracing::info!("SIGHUP: reloading the web config");
                        let _ = this.reload();
                    } else {
                        let _ = this.reload_if_changed();
                    }
                })
                .await;
            }
        })
    }
}

fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
