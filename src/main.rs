//! The promgate binary: parse flags, set up logging, bind, serve, shut down
//! gracefully on SIGTERM or SIGINT.

use std::process::ExitCode;

use clap::Parser;
use promgate::config::{Config, LogFormat};
use promgate::http::{AppState, router, spawn_sweeper};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(e) = init_logging(&config) {
        eprintln!("promgate: invalid --log.level {:?}: {e}", config.log_level);
        return ExitCode::from(2);
    }
    let state = AppState::new(&config);
    let sweeper = config.ttl().map(|ttl| spawn_sweeper(&state, ttl));

    let listener = match tokio::net::TcpListener::bind(config.listen_address).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(address = %config.listen_address, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().map_or(config.listen_address, |a| a);
    tracing::info!(
        address = %address,
        ttl = %humantime::format_duration(config.series_ttl),
        timestamps = ?config.timestamps,
        version = env!("CARGO_PKG_VERSION"),
        "promgate listening"
    );

    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    if let Some(s) = sweeper {
        s.abort();
    }
    match served {
        Ok(()) => {
            tracing::info!("promgate stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
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

/// Resolves on the first SIGINT or SIGTERM; the server then stops accepting
/// and finishes the requests in flight.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!(signal = "SIGINT", "shutting down"),
        () = term => tracing::info!(signal = "SIGTERM", "shutting down"),
    }
}
