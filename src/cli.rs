//! The command line: `licenses [--config FILE] [COMMAND]`.
//!
//! A new command is a variant of [`Command`] (its doc comment is its one-line help, its
//! `long_about` the full one) and an arm in [`run`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use licenses_api_management::{Scope, Scopes};

use crate::settings::{self, ConfigSources, Settings};
use crate::{Application, StartError, import, telemetry};

const ABOUT: &str = "AminoTV Licenses v4: the management API for the BSS and the user API for \
                     client apps, in one service";

const LONG_ABOUT: &str = "\
AminoTV Licenses v4: the management API (for the operator's BSS: products and licenses, with
an API key) and the user API (for client apps: catalogue, purchases and a user's licenses, with
the user's token), in one service, over PostgreSQL or an embedded SQLite database.

With no command, `licenses` serves (`licenses serve`).

Configuration, later layers win:
  1. config/default.toml
  2. config/$APP_ENV.toml      APP_ENV is local (default), test, production, or any other
                               name (its file is optional); all but local and test get the
                               production checks
  3. the file of --config FILE
  4. environment variables LICENSES__SECTION__KEY, e.g. LICENSES__DATABASE__URL
The directory is ./config, or the one named by LICENSES_CONFIG_DIR. RUST_LOG sets the log
filter (default: info,actix_server=warn). The keys are described in README.md.";

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
auth.management_keys, auth.user_tokens.* and irdeto.*. In every environment but local and test
it refuses to start without real management keys and token verification material, or without
TLS to a database or Irdeto beyond loopback, naming the key; with a listener on an address that
is not loopback it refuses the development key, secret and tokens whatever APP_ENV is.";

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

const APIKEY_NEW_ABOUT: &str = "\
Makes a new management API key and prints it once, with the configuration entry that holds
only its SHA-256: the key itself is never stored by the service.

Give the key to the BSS (it sends `Authorization: Apikey KEY`) and add the entry to
auth.management_keys. The name is what the audit trail records for the key's changes; naming
keys lets one be rotated: add the new key, move the BSS over, remove the old entry.

--scope limits what the key may do: read (GET and HEAD outside /irdeto/), write (every method
outside /irdeto/), irdeto (the /irdeto/ backlog and retries). A key without the scope a
request needs gets 403 insufficient_scope. Without --scope the key has all three.";

const APIKEY_NEW_EXAMPLES: &str = "\
Examples:
  licenses apikey new --name bss
  licenses apikey new --name bss-2026-11
  licenses apikey new --name reports --scope read
  licenses apikey new --name irdeto-ops --scope read --scope irdeto";

const TOKEN_ABOUT: &str = "\
Mints a user token (a JWT for `Authorization: Bearer TOKEN` on the user API) signed with the
configured HS256 secret, and prints it.

For development and tests only: it is refused where auth.dev_tokens is false, in every
environment but local and test, and where a listener is not on loopback. Real tokens come from the platform's identity service. The token's sub is
--user; --flag adds a flag such as LICENSE_PURCHASE_RESTRICTED; auth.user_tokens.issuer and
auth.user_tokens.audience, when set, are put in it.";

const TOKEN_EXAMPLES: &str = "\
Examples:
  licenses token --user 41
  licenses token --user 41 --ttl 600 --flag LICENSE_PURCHASE_RESTRICTED
  TOKEN=$(cargo run -q -- token --user 41)";

const MIGRATE_EXAMPLES: &str = "\
Examples:
  licenses migrate
  APP_ENV=production LICENSES__DATABASE__URL=postgres://licenses:PASSWORD@db:5432/licenses \\
    licenses migrate";

const IMPORT_ABOUT: &str = "\
Migration from legacy: imports licenses of the legacy product API from FILE, one license a
row, with the same rules as the management API's batch_create (every row is validated by the
domain before anything is stored). Idempotent by (user_id, order_id): a row whose order id is
already stored for its user is skipped and counted as already present, so running the same
command again after a crash or Ctrl-C continues where it stopped and imports nothing twice. A
row without order_id is refused.

FILE is CSV with a header (any other extension), or JSON Lines (.jsonl, .ndjson): one object a
line with the same names as keys. Columns:
  user_id         required
  product_code    required: the legacy product code, mapped through --products
  order_id        required: the legacy order id, what makes the import idempotent
  start_date      unix seconds, 2024-01-31 or 2024-01-31T12:00:00Z (UTC); blank: now
  stop_date       same forms; blank: the product's license duration (none: no end)
  price_amount    minor units (cents), with currency; both blank: the product's price
  currency        ISO 4217, e.g. EUR
  payment_method  free text, at most 64 bytes
  recurring       true/false (1/0, yes/no); blank: the product's auto_renew
  status          ACTIVE (default) or SUSPENDED
  purchase_date   same forms as start_date; blank: now

--products MAPPING is CSV with the header legacy_code,product_id: one line per legacy product
code, naming the v4 product it becomes.

Rows are stored --batch N at a time, one transaction each (default 1000, at most 10000).
Refused rows (unknown product code, bad dates, bad currency, duplicate order_id within a
batch, malformed line, invalid UTF-8, …) never stop the import: each is written to --report
FILE as CSV line,field,code,reason (without --report: on standard error). --dry-run writes
nothing to the database and reports the same. Progress goes to standard error: a bar with
rate and ETA on a terminal, a plain line every 5 seconds otherwise. The summary (read,
imported, already present, refused) is printed on standard output. The exit status is 0 when
the whole file was read, even with refused rows; 1 when the import stopped (database down):
run it again.

The database must be migrated (`licenses migrate`). See docs/migration.md.";

const IMPORT_EXAMPLES: &str = "\
Examples:
  licenses import legacy.csv --products products.csv --dry-run --report refused.csv
  licenses import legacy.csv --products products.csv --report refused.csv
  licenses import legacy.jsonl --products products.csv --batch 5000
  APP_ENV=production LICENSES__DATABASE__URL=postgres://licenses:PASSWORD@db:5432/licenses \\
    licenses import legacy.csv --products products.csv --report refused.csv

legacy.csv:
  user_id,product_code,start_date,stop_date,order_id,price_amount,currency,payment_method,recurring
  41,SVOD-SPORT,2024-01-01,2025-01-01,LEG-1001,999,EUR,card,true
products.csv:
  legacy_code,product_id
  SVOD-SPORT,41";

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
    /// Management API keys
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Mint a development user token (refused where auth.dev_tokens is false)
    #[command(long_about = TOKEN_ABOUT, after_long_help = TOKEN_EXAMPLES)]
    Token {
        /// The user id: the token's sub
        #[arg(long, value_name = "ID")]
        user: String,
        /// A flag to put in the token, e.g. LICENSE_PURCHASE_RESTRICTED; repeatable
        #[arg(long = "flag", value_name = "FLAG")]
        flags: Vec<String>,
        /// Seconds until the token expires
        #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
        ttl: u64,
    },
    /// Irdeto entitlements: resync, retry a failed job
    #[command(subcommand)]
    Irdeto(IrdetoCommand),
    /// Import licenses from the legacy system (CSV or JSON Lines), idempotently
    #[command(long_about = IMPORT_ABOUT, after_long_help = IMPORT_EXAMPLES)]
    Import(ImportCommand),
    /// Print an API's OpenAPI 3.1 document (JSON), as the service serves it
    #[command(long_about = OPENAPI_ABOUT, after_long_help = OPENAPI_EXAMPLES)]
    Openapi {
        /// Which API: user (client apps) or management (the BSS)
        #[arg(value_enum)]
        api: OpenapiApi,
    },
}

/// The APIs `licenses openapi` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OpenapiApi {
    /// The user API, /api/license/v4
    User,
    /// The management API, /api/license/management/v4
    Management,
}

const OPENAPI_ABOUT: &str = "\
Print the OpenAPI 3.1 document of the user or the management API, as pretty JSON, to standard
output. It is generated from the handlers and document types, and is the document the service
serves, without authentication, at /api/license/v4/openapi.json and
/api/license/management/v4/openapi.json (Swagger UI at .../docs). Needs no configuration nor
database.

docs/openapi/user.json and docs/openapi/management.json are this command's output; a test
fails when they differ from what the code generates.";

const OPENAPI_EXAMPLES: &str = "\
Examples:
  licenses openapi user > docs/openapi/user.json
  licenses openapi management > docs/openapi/management.json";

/// The OpenAPI document of `api`, as pretty JSON with a final newline (the form committed
/// under docs/openapi/).
pub fn openapi_json(api: OpenapiApi) -> String {
    let doc = match api {
        OpenapiApi::User => licenses_api_user::openapi(),
        OpenapiApi::Management => licenses_api_management::openapi(),
    };
    let mut json = doc.to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

/// `licenses import …`: see [`IMPORT_ABOUT`].
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ImportCommand {
    /// The legacy licenses: CSV with a header, or JSON Lines (.jsonl, .ndjson)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// CSV legacy_code,product_id: the v4 product of each legacy product code
    #[arg(long, value_name = "MAPPING")]
    pub products: PathBuf,
    /// Validate and count, writing nothing to the database
    #[arg(long)]
    pub dry_run: bool,
    /// Rows per transaction
    #[arg(long, value_name = "N", default_value_t = licenses_import::DEFAULT_BATCH, value_parser = batch_size)]
    pub batch: usize,
    /// Write every refused row here, as CSV line,field,code,reason (default: standard error)
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

fn batch_size(n: &str) -> Result<usize, String> {
    match n.parse::<usize>() {
        Ok(n) if (1..=licenses_import::MAX_BATCH).contains(&n) => Ok(n),
        _ => Err(format!(
            "a number of rows from 1 to {}",
            licenses_import::MAX_BATCH
        )),
    }
}

/// `licenses irdeto …`
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum IrdetoCommand {
    /// Queue the Irdeto grants of active (and suspended) licenses again, for when the two
    /// systems drifted apart; Irdeto takes a grant it has as success
    Resync {
        /// Only this user's licenses
        #[arg(long, value_name = "ID")]
        user: Option<String>,
    },
    /// Make a failed entitlement job (see GET …/irdeto/backlog) due again now
    Retry {
        /// The job's id
        #[arg(value_name = "ID")]
        job: i64,
    },
}

/// `licenses apikey …`
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ApikeyCommand {
    /// Make a new management API key: print it once, and the entry to configure
    #[command(long_about = APIKEY_NEW_ABOUT, after_long_help = APIKEY_NEW_EXAMPLES)]
    New {
        /// The key's name, recorded in the audit trail (letters, digits, '.', '_', '-')
        #[arg(long, value_name = "NAME", value_parser = key_name)]
        name: String,
        /// What the key may do: read (GET), write (every method), irdeto (the /irdeto/
        /// routes); repeatable or comma-separated. Without it: all three
        #[arg(long = "scope", value_name = "SCOPE", num_args = 1.., value_delimiter = ',', value_parser = scope)]
        scopes: Vec<Scope>,
    },
}

fn scope(s: &str) -> Result<Scope, String> {
    s.parse()
}

fn key_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err("1 to 64 letters, digits, '.', '_' or '-'".to_owned())
    }
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
    #[error("{0}")]
    Token(String),
    #[error(transparent)]
    Import(#[from] import::ImportCommandError),
}

/// The binary's `main`: parses the command line, runs the command, and turns an error into
/// one line on standard error and a failure status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    let result = run(cli);
    telemetry::flush();
    match result {
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
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Apikey(ApikeyCommand::New { name, scopes }) = &command {
        // Needs no configuration: it makes a key for one.
        let scopes = if scopes.is_empty() {
            Scopes::ALL
        } else {
            scopes.iter().copied().collect()
        };
        print!("{}", new_api_key(name, scopes));
        return Ok(());
    }
    if let Command::Openapi { api } = &command {
        // Needs no configuration: the document is the code's.
        print!("{}", openapi_json(*api));
        return Ok(());
    }
    let sources = ConfigSources::from_process(cli.config);
    if matches!(command, Command::Token { .. }) && settings::is_production(&sources.app_env) {
        return Err(CommandError::Token(DEV_TOKENS_OFF.to_owned()));
    }
    let settings = settings::load(&sources)?;
    // `serve` logs a line a request: those are written in chunks (log_buffer).
    let lines = match command {
        Command::Serve => telemetry::Lines::Buffered,
        _ => telemetry::Lines::Direct,
    };
    telemetry::set_output(settings.log.format, lines);
    if let Command::Token { user, flags, ttl } = &command {
        println!("{}", dev_token(&settings, user, flags, *ttl)?);
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Runtime)?;
    match command {
        Command::Migrate => runtime.block_on(migrate(settings)),
        Command::Irdeto(command) => {
            println!(
                "{}",
                runtime.block_on(crate::irdeto_command(settings, command))?
            );
            Ok(())
        }
        Command::Import(args) => runtime.block_on(run_import(settings, args)),
        _ => runtime.block_on(serve(settings)),
    }
}

const DEV_TOKENS_OFF: &str = "auth.dev_tokens is false here (or refused: always under production \
                              checks and with a listener that is not loopback): licenses \
                              token mints development tokens only; real tokens come from the \
                              identity service";

/// What `licenses apikey new` prints: the key, once, and its configuration entry.
fn new_api_key(name: &str, scopes: Scopes) -> String {
    let (key, sha256) = licenses_api_management::new_key();
    let list = scopes
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "New management API key {name:?} (scopes {scopes}); it is shown only now, keep it in \
         the BSS's secrets:\n\n  {key}\n\nThe BSS sends it as: Authorization: Apikey {key}\n\n\
         Configure its hash in auth.management_keys, in a config file:\n\n  \
         [[auth.management_keys]]\n  name = \"{name}\"\n  sha256 = \"{sha256}\"\n  \
         scopes = [{list}]\n\nor in the environment (comma-separated name:sha256:scopes \
         entries):\n\n  LICENSES__AUTH__MANAGEMENT_KEYS={name}:{sha256}:{scopes}\n"
    )
}

/// `licenses token`: a development user token, refused where development tokens are off.
fn dev_token(
    settings: &Settings,
    user: &str,
    flags: &[String],
    ttl: u64,
) -> Result<String, CommandError> {
    if !settings.auth.dev_tokens || settings.exposure().refuses_development_credentials() {
        return Err(CommandError::Token(DEV_TOKENS_OFF.to_owned()));
    }
    let tokens = &settings.auth.user_tokens;
    if tokens.algorithm.unwrap_or(settings::TokenAlgorithm::Hs256)
        != settings::TokenAlgorithm::Hs256
    {
        return Err(CommandError::Token(
            "auth.user_tokens.algorithm: licenses token signs HS256 tokens only".to_owned(),
        ));
    }
    if tokens.max_ttl_s > 0 && ttl > tokens.max_ttl_s {
        return Err(CommandError::Token(format!(
            "--ttl {ttl} is longer than auth.user_tokens.max_ttl_s ({}): the service would \
             refuse the token",
            tokens.max_ttl_s
        )));
    }
    let Some(secret) = tokens.secret.as_ref() else {
        return Err(CommandError::Token(
            "auth.user_tokens.secret: not set".to_owned(),
        ));
    };
    use secrecy::ExposeSecret;
    licenses_api_user::mint_token(
        secret.expose_secret(),
        user,
        flags,
        ttl,
        tokens.issuer.as_deref(),
        tokens.audience.as_deref(),
    )
    .map_err(|e| CommandError::Token(e.to_string()))
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

async fn run_import(settings: Settings, args: ImportCommand) -> Result<(), CommandError> {
    let args = licenses_import::ImportArgs {
        file: args.file,
        products: args.products,
        dry_run: args.dry_run,
        batch: args.batch,
        report: args.report,
    };
    import::run(settings, args).await?;
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
    fn apikey_new_prints_a_key_whose_hash_it_configures() {
        let cli = Cli::try_parse_from([
            "licenses", "apikey", "new", "--name", "ro", "--scope", "read", "--scope", "irdeto",
        ])
        .expect("parses");
        assert_eq!(
            cli.command,
            Some(Command::Apikey(ApikeyCommand::New {
                name: "ro".into(),
                scopes: vec![Scope::Read, Scope::Irdeto]
            }))
        );
        let cli = Cli::try_parse_from([
            "licenses",
            "apikey",
            "new",
            "--name",
            "ro",
            "--scope",
            "read,write",
        ])
        .expect("parses");
        assert!(
            matches!(cli.command, Some(Command::Apikey(ApikeyCommand::New { scopes, .. })) if scopes.len() == 2)
        );
        assert!(
            Cli::try_parse_from([
                "licenses", "apikey", "new", "--name", "x", "--scope", "admin"
            ])
            .is_err()
        );
        let out = new_api_key("ro", "read+irdeto".parse().expect("scopes"));
        assert!(out.contains("scopes = [\"read\", \"irdeto\"]"), "{out}");
        let (_, env) = out
            .split_once("LICENSES__AUTH__MANAGEMENT_KEYS=")
            .expect("env form");
        let entry: settings::ManagementKey = env.trim().parse().expect("the printed entry parses");
        assert_eq!(entry.scopes.to_string(), "read+irdeto");

        let out = new_api_key("bss", Scopes::ALL);
        let key = out.lines().nth(2).map(str::trim).expect("the key line");
        let (_, hash) = out.split_once("sha256 = \"").expect("entry");
        let hash = &hash[..64];
        let keys =
            licenses_api_management::ManagementKeys::new([("bss".to_owned(), hash.to_owned())])
                .expect("a valid entry");
        assert_eq!(keys.verify(key), Some("bss"));
        assert!(out.contains(&format!(
            "LICENSES__AUTH__MANAGEMENT_KEYS=bss:{hash}:read+write+irdeto"
        )));
        assert!(Cli::try_parse_from(["licenses", "apikey", "new", "--name", "a b"]).is_err());
    }

    #[test]
    fn tokens_are_minted_only_where_development_tokens_are_allowed() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
        let local = settings::load(&ConfigSources::for_environment(dir, "local")).expect("local");
        let token = dev_token(
            &local,
            "41",
            &["LICENSE_PURCHASE_RESTRICTED".to_owned()],
            60,
        )
        .expect("minted");
        let verifier = licenses_api_user::TokenVerifier::new(
            &licenses_api_user::TokenSettings::hs256(settings::DEV_TOKEN_SECRET),
        )
        .expect("verifier");
        let claims = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(verifier.verify(&token))
            .expect("valid");
        assert_eq!(claims.user.as_str(), "41");
        assert!(claims.purchase_restricted());

        let mut public = local.clone();
        public.server.user_addr = "0.0.0.0:8080".into();
        let err = dev_token(&public, "41", &[], 60).expect_err("refused on a public listener");
        assert!(err.to_string().starts_with("auth.dev_tokens"), "{err}");
        let mut staging = local.clone();
        staging.app_env = "staging".into();
        let err = dev_token(&staging, "41", &[], 60).expect_err("refused under staging");
        assert!(err.to_string().starts_with("auth.dev_tokens"), "{err}");

        let mut off = local;
        off.auth.dev_tokens = false;
        let err = dev_token(&off, "41", &[], 60).expect_err("refused");
        assert!(err.to_string().starts_with("auth.dev_tokens"), "{err}");

        let local = settings::load(&ConfigSources::for_environment(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"),
            "local",
        ))
        .expect("local");
        let err = dev_token(&local, "41", &[], 86_401).expect_err("too long");
        assert!(err.to_string().starts_with("--ttl 86401"), "{err}");
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
