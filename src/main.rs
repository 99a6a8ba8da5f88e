//! The promgate binary: set glibc malloc's thresholds and top pad, start the runtime,
//! parse flags, set up logging, hand over to
//! [`promgate::server::run`].

use std::process::ExitCode;

use clap::Parser;
use promgate::config::{Command, Config, LogFormat};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

fn main() -> ExitCode {
    // Before the runtime starts its threads.
    let allocator = tune_allocator();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(allocator)),
        Err(e) => {
            eprintln!("promgate: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(allocator: Allocator) -> ExitCode {
    let config = Config::parse();
    if let Err(e) = config.check() {
        use clap::CommandFactory;
        Config::command()
            .error(clap::error::ErrorKind::ArgumentConflict, e)
            .exit();
    }
    if let Some(Command::Push(args)) = &config.command {
        return match promgate::push_client::run(args).await {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("promgate push: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Err(e) = init_logging(&config) {
        eprintln!("promgate: invalid --log.level {:?}: {e}", config.log_level);
        return ExitCode::from(2);
    }
    match allocator {
        Allocator::Tuned => tracing::debug!(
            mmap_threshold = MMAP_THRESHOLD,
            trim_threshold = TRIM_THRESHOLD,
            top_pad = TOP_PAD,
            "glibc malloc thresholds set"
        ),
        Allocator::Operators => {
            tracing::info!("glibc malloc settings from the environment, left as they are")
        }
        Allocator::Refused => {
            tracing::warn!("glibc refused the malloc thresholds; running with its defaults")
        }
        Allocator::Other => {}
    }
    match promgate::server::run(&config).await {
        Ok(()) => {
            tracing::info!("promgate stopped");
            ExitCode::SUCCESS
        }
        // A bad --web.config.file: refuse to start rather than serve
        // without the access control it asks for.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            tracing::error!(error = %e, "cannot start");
            ExitCode::FAILURE
        }
        Err(e) => {
            tracing::error!(address = %config.listen_address, error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// What [`tune_allocator`] did.
enum Allocator {
    /// The thresholds below are set.
    Tuned,
    /// The environment sets glibc malloc parameters: left to them.
    Operators,
    /// `mallopt` refused a value.
    Refused,
    /// Not glibc: nothing to set.
    #[cfg_attr(all(target_os = "linux", target_env = "gnu"), allow(dead_code))]
    Other,
}

/// Buffers up to this size come from the heap (bytes).
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory up to this size stays at a heap's top (bytes).
const TRIM_THRESHOLD: i32 = 64 << 20;
/// What a heap grows by beyond a request (bytes): glibc's `HEAP_MAX_SIZE`
/// on 64-bit, so that a thread's heap is made writable whole when it is
/// created rather than a page at a time as it fills.
const TOP_PAD: i32 = 64 << 20;

/// Sets glibc malloc's thresholds (`mallopt(3)`) to the highest values its
/// own dynamic rule reaches (32 MiB, glibc's `DEFAULT_MMAP_THRESHOLD_MAX`,
/// and twice that to trim), from the start: buffers up to 32 MiB (a push's
/// body, a decoded request, their batches) come from the heap and are
/// reused by the next request, and up to 64 MiB free at a heap's top stays
/// mapped. Left dynamic, each request larger than any freed before maps
/// fresh buffers and faults every page in again (a second 100k-series push:
/// 5,700 page faults, 44 ms instead of 31 ms).
///
/// And the top pad to a heap's whole size (64 MiB). Threads other than the
/// main one allocate from arenas of their own (up to 8 per core, shared
/// beyond), whose heaps glibc reserves 64 MiB at a time and makes writable
/// with one `mprotect` per growth, by what the allocation needs and no more
/// (for these heaps the top pad counts only when one is created): filling
/// a heap with small blocks, as creating series does, costs an `mprotect`
/// per 4 KiB page — 44,000 for the first million remote-written series,
/// 5,700 for the first 100k-series push, a sixth of its time. With the pad,
/// a heap is writable whole from its creation. No page is touched by that,
/// so resident memory is unchanged, but each heap counts as committed in
/// full (about 200 MiB at idle on 2 cores), which matters only under
/// `vm.overcommit_memory=2`. The main thread's heap, grown by `brk`, grows
/// by the pad at a time and keeps it when trimmed.
///
/// An environment that sets glibc malloc parameters (`GLIBC_TUNABLES`
/// naming `glibc.malloc`, or the older `MALLOC_*` variables) is the
/// operator's choice, left alone.
fn tune_allocator() -> Allocator {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let operators = std::env::vars_os().any(|(name, value)| {
            let name = name.to_string_lossy();
            (name == "GLIBC_TUNABLES" && value.to_string_lossy().contains("glibc.malloc."))
                || name.starts_with("MALLOC_")
        });
        if operators {
            return Allocator::Operators;
        }
        // SAFETY: mallopt only sets allocator parameters, under glibc's own
        // lock; it runs before the runtime starts any thread.
        let set = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
                && libc::mallopt(libc::M_TOP_PAD, TOP_PAD) == 1
        };
        if set {
            Allocator::Tuned
        } else {
            Allocator::Refused
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    Allocator::Other
}

fn init_logging(config: &Config) -> Result<(), tracing_subscriber::filter::ParseError> {
    let filter = EnvFilter::try_new(&config.log_level)?;
    let registry = tracing_subscriber::registry().with(filter);
    match config.log_format {
        // Logs go to stderr, as in the Prometheus family; stdout stays free.
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
    Ok(())
}
