//! The promgate binary: parse flags, set up logging, hand over to
//! [`promgate::server::run`].

use std::process::ExitCode;

use clap::Parser;
use promgate::config::{Command, Config, LogFormat};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

#[tokio::main]
async fn main() -> ExitCode {
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
