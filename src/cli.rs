//! The command line: `licenses [--config FILE] [COMMAND]`.
//!
//! A new command is a variant of [`Command`] (its doc comment is its one-line help, its
//! `long_about` the full one) and an arm in [`run`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::{self, ConfigSources, Settings};
use crate::{Application, StartError, telemetry};

const ABOUT: &str = "AminoTV Licenses v4: the management API for the BSS and the user API for \
                     client apps, in one service";

const LONG_ABOUT: &str = "\
AminoTV Licenses v4: the management API (for the operator's BSS: products and licenses, with
an API key) and the user API (for client apps: catalogue, purchases and a user's licenses, with
the user's token), in one service, over PostgreSQL or an embedded SQLite database.

With no command, `licenses` serves (`licenses serve`).

Configuration, later layers win:
  1. config/default.toml
  2. config/$APP_ENV.toml      APP_ENV is local (default), production, test, or any name with
                               a file of its own
  3. the file of --config FILE
  4. environment variables LICENSES__SECTION__KEY, e.g. LICENSES__DATABASE__URL
The directory is ./config, or the one named by LICENSES_CONFIG_DIR. RUST_LOG sets the log
filter (default: info). The keys are described in README.md.";

const EXAMPLES: &str = "\
Examples:
  licenses                                   serve with config/default.toml + config/local.toml
  APP_ENV=production licenses serve          serve with the production settings
  LICENSES__DATABASE__URL=postgres://postgres@localhost:5432/licenses licenses migrate
  licenses --config /etc/licenses.toml serve";

const SERVE_ABOUT: &str = "\
Serves the user API and the management API until SIGINT or SIGTERM.

Opens database.url (checking that it answers), applies pending migrations when
database.migrate_on_start is true, then listens on server.user_addr (user API) and
server.management_addr (management API); when both are the same address, one listener serves
both. Every listener answers GET /health/live (200 while the process runs) and
GET /health/ready (200 when the database answers and no migration is pending, else 503).

On SIGINT or SIGTERM the listeners stop accepting connections, requests in flight finish (for
at most 30 seconds), and the process exits with status 0.

Keys that matter: database.url, database.pool_size, database.checkout_timeout_ms,
database.migrate_on_start, server.user_addr, server.management_addr, server.cors_origins,
auth.management_keys, auth.user_tokens.* and irdeto.*. Under APP_ENV=production it refuses to
start without real management keys and token verification material, naming what is missing.";

const SERVE_EXAMPLES: &str = "\
Examples:
  licenses serve
  LICENSES__SERVER__USER_ADDR=0.0.0.0:8080 licenses serve
  LICENSES__DATABASE__URL=postgres://postgres@localhost:5432/licenses licenses serve";

const MIGRATE_ABOUT: &str = "\
Applies the pending database migrations to database.url, prints the ones it applied, and
exits.

Run it once per release before starting the new instances (with database.migrate_on_start
false, as under APP_ENV=production), so that instances never migrate concurrently. Running it
again applies nothing. Only database.* matters to it.";

const MIGRATE_EXAMPLES: &str = "\
Examples:
  licenses migrate
  APP_ENV=production LICENSES__DATABASE__URL=postgres://licenses:PASSWORD@db:5432/licenses \\
    licenses migrate";

/// `licenses [--config FILE] [COMMAND]`
#[derive(Debug, Parser)]
#[command(
    name = "licenses",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES,
)]
pub struct Cli {
    /// A TOML file layered over config/default.toml and config/$APP_ENV.toml, and under the
    /// LICENSES__SECTION__KEY environment variables
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve the user and management APIs until stopped (the default command)
    #[command(long_about = SERVE_ABOUT, after_long_help = SERVE_EXAMPLES)]
    Serve,
    /// Apply pending database migrations to database.url, print them, and exit
    #[command(long_about = MIGRATE_ABOUT, after_long_help = MIGRATE_EXAMPLES)]
    Migrate,
}

/// Why a command failed: printed as one line on standard error.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// The binary's `main`: parses the command line, runs the command, and turns an error into
/// one line on standard error and a failure status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// Loads the settings (`--config`, `APP_ENV`, `LICENSES_CONFIG_DIR`, `LICENSES__…`) and runs
/// the command.
pub fn run(cli: Cli) -> Result<(), CommandError> {
    let settings = settings::load(&ConfigSources::from_process(cli.config))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Runtime)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(serve(settings)),
        Command::Migrate => runtime.block_on(migrate(settings)),
    }
}

async fn serve(settings: Settings) -> Result<(), CommandError> {
    tracing::info!(app_env = %settings.app_env, "starting");
    let application = Application::build(settings).await?;
    application.run_until_stopped().await?;
    Ok(())
}

async fn migrate(settings: Settings) -> Result<(), CommandError> {
    let applied = crate::migrate(&settings).await?;
    let url = settings::redacted_url(&settings.database.url);
    if applied.is_empty() {
        println!("{url}: no pending migration");
    } else {
        println!("{url}: applied {} migration(s):", applied.len());
        for name in applied {
            println!("  {name}");
        }
    }
    Ok(())
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_is_the_default_and_config_goes_anywhere() {
        let cli = Cli::try_parse_from(["licenses"]).expect("parses");
        assert_eq!(cli.command, None);
        let cli =
            Cli::try_parse_from(["licenses", "--config", "a.toml", "migrate"]).expect("parses");
        assert_eq!(cli.command, Some(Command::Migrate));
        assert_eq!(cli.config, Some(PathBuf::from("a.toml")));
        let cli = Cli::try_parse_from(["licenses", "serve", "--config", "b.toml"]).expect("parses");
        assert_eq!(cli.command, Some(Command::Serve));
        assert_eq!(cli.config, Some(PathBuf::from("b.toml")));
    }

    #[test]
    fn help_explains_commands_and_configuration() {
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            "serve",
            "migrate",
            "--config",
            "APP_ENV",
            "LICENSES__DATABASE__URL",
            "Examples",
        ] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
        let mut cmd = Cli::command();
        let serve = cmd
            .find_subcommand_mut("serve")
            .expect("serve")
            .render_long_help()
            .to_string();
        for needle in [
            "server.user_addr",
            "database.migrate_on_start",
            "/health/ready",
            "SIGTERM",
        ] {
            assert!(serve.contains(needle), "{needle} missing from:\n{serve}");
        }
        let migrate = cmd
            .find_subcommand_mut("migrate")
            .expect("migrate")
            .render_long_help()
            .to_string();
        assert!(migrate.contains("database.url"), "{migrate}");
    }
}
