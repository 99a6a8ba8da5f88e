//! mock-exporter: the synthetic 340+ series workload the cluster vmagents scrape.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use mock_exporter::http::{MockState, router, system_clock};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

/// mock-exporter: realistic HTTP, node and application metrics for many
/// clusters (`/metrics?cluster=NAME`), and simulated cross-region round trips
/// (`/probe/{from_region}/{to_region}`).
#[derive(Debug, Parser)]
#[command(name = "mock-exporter", version, about, long_about = None)]
struct Config {
    /// Address to listen on.
    #[arg(
        long = "web.listen-address",
        env = "MOCK_EXPORTER_WEB_LISTEN_ADDRESS",
        default_value = "0.0.0.0:2112"
    )]
    listen_address: SocketAddr,

    /// Seed of the generator: the same seed and clock give the same values.
    #[arg(long = "seed", env = "MOCK_EXPORTER_SEED", default_value_t = 42)]
    seed: u64,

    /// Most distinct clusters served; requests for more get 429.
    #[arg(
        long = "clusters.max",
        env = "MOCK_EXPORTER_CLUSTERS_MAX",
        default_value_t = 16
    )]
    max_clusters: usize,

    /// Log level: error, warn, info, debug or trace.
    #[arg(
        long = "log.level",
        env = "MOCK_EXPORTER_LOG_LEVEL",
        default_value = "info"
    )]
    log_level: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let filter = match EnvFilter::try_new(&config.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "mock-exporter: invalid --log.level {:?}: {e}",
                config.log_level
            );
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_logfmt::builder()
                .layer()
                .with_writer(std::io::stderr),
        )
        .init();

    let state = MockState::new(config.seed, config.max_clusters, system_clock());
    let listener = match tokio::net::TcpListener::bind(config.listen_address).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(address = %config.listen_address, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().map_or(config.listen_address, |a| a);
    tracing::info!(address = %address, seed = config.seed, "mock-exporter listening");
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
    };
    match axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
