//! The `licenses` binary as an operator runs it: exit statuses, the one-line errors, `migrate`,
//! and `serve` stopping on SIGTERM.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use licenses_testkit::{ServiceProcess, isolated_command};

/// The binary, run from the repository root (where `config/` is), with no `APP_ENV`,
/// `LICENSES_CONFIG_DIR` or `LICENSES__…` variable inherited from the test's environment.
fn licenses(args: &[&str]) -> Command {
    let mut command = isolated_command(env!("CARGO_BIN_EXE_licenses"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a failure whose standard error is exactly one line, and returns it.
fn one_line_failure(output: &Output) -> String {
    let err = stderr(output);
    assert!(
        !output.status.success(),
        "expected a failure; stderr: {err}"
    );
    assert_eq!(output.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected, got: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}/licenses.db", dir.path().display())
}

#[test]
fn a_malformed_database_url_is_named() {
    let output = run(licenses(&["serve"]).env("LICENSES__DATABASE__URL", "mysql://localhost/x"));
    let err = one_line_failure(&output);
    assert!(err.contains("database.url"), "{err}");
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let output = run(licenses(&["serve"]).env(
        "LICENSES__DATABASE__URL",
        "postgres://postgres:hunter2@127.0.0.1:1/licenses",
    ));
    let err = one_line_failure(&output);
    assert!(err.contains("database.url"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn an_app_env_that_is_not_a_plain_name_is_named() {
    let output = run(licenses(&["serve"]).env("APP_ENV", "../nosuchenv"));
    let err = one_line_failure(&output);
    assert!(err.contains("APP_ENV"), "{err}");
    assert!(err.contains("nosuchenv"), "{err}");
}

#[test]
fn any_other_environment_gets_the_production_checks() {
    // `staging` has no file of its own: it loads and is checked as production is.
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(licenses(&["serve"])
        .env("APP_ENV", "staging")
        .env("LICENSES__DATABASE__URL", sqlite_url(&dir))
        .env(
            "LICENSES__AUTH__USER_TOKENS__SECRET",
            licenses::settings::DEV_TOKEN_SECRET,
        ));
    let err = one_line_failure(&output);
    assert!(err.contains("auth.management_keys: is not set"), "{err}");
    assert!(
        err.contains("auth.user_tokens.secret: is the public development secret"),
        "{err}"
    );
    assert!(err.contains("APP_ENV=staging"), "{err}");
    assert!(!err.contains(licenses::settings::DEV_TOKEN_SECRET), "{err}");
}

#[test]
fn a_public_listener_refuses_the_development_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(licenses(&["serve"])
        .env("LICENSES__DATABASE__URL", sqlite_url(&dir))
        .env("LICENSES__SERVER__MANAGEMENT_ADDR", "0.0.0.0:0"));
    let err = one_line_failure(&output);
    assert!(
        err.contains(
            "auth.management_keys: key \"dev\" is the public development key, refused while \
             server.management_addr (0.0.0.0:0) is not a loopback address"
        ),
        "{err}"
    );
    assert!(err.contains("auth.user_tokens.secret"), "{err}");
    assert!(err.contains("auth.dev_tokens"), "{err}");
    assert!(
        !dir.path().join("licenses.db").exists(),
        "refused before the database is created"
    );
}

#[test]
fn a_bad_listen_address_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(licenses(&[])
        .env("LICENSES__DATABASE__URL", sqlite_url(&dir))
        .env("LICENSES__SERVER__MANAGEMENT_ADDR", "nowhere"));
    let err = one_line_failure(&output);
    assert!(err.contains("server.management_addr"), "{err}");
}

#[test]
fn production_refuses_to_serve_without_keys_and_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(licenses(&["serve"])
        .env("APP_ENV", "production")
        .env("LICENSES__DATABASE__URL", sqlite_url(&dir)));
    let err = one_line_failure(&output);
    assert!(err.contains("auth.management_keys"), "{err}");
    assert!(err.contains("auth.user_tokens.secret"), "{err}");
}

#[test]
fn a_weak_token_secret_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(licenses(&["serve"])
        .env("LICENSES__DATABASE__URL", sqlite_url(&dir))
        .env("LICENSES__AUTH__USER_TOKENS__SECRET", "tiny-s3cret"));
    let err = one_line_failure(&output);
    assert!(err.contains("auth.user_tokens.secret"), "{err}");
    assert!(
        !err.contains("tiny-s3cret"),
        "the secret itself is never shown: {err}"
    );
    assert!(
        !dir.path().join("licenses.db").exists(),
        "refused before the database is created or migrated"
    );
}

#[test]
fn a_missing_config_file_is_named() {
    let output = run(&mut licenses(&[
        "--config",
        "/nonexistent/licenses.toml",
        "migrate",
    ]));
    let err = one_line_failure(&output);
    assert!(err.contains("/nonexistent/licenses.toml"), "{err}");
}

#[test]
fn migrate_applies_once_and_prints_what_it_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = run(licenses(&["migrate"]).env("LICENSES__DATABASE__URL", sqlite_url(&dir)));
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "stdout: {out} stderr: {}",
        stderr(&first)
    );
    assert!(out.contains("applied"), "{out}");
    assert!(dir.path().join("licenses.db").is_file());

    let second = run(licenses(&["migrate"]).env("LICENSES__DATABASE__URL", sqlite_url(&dir)));
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success(),
        "stdout: {out} stderr: {}",
        stderr(&second)
    );
    assert!(out.contains("no pending migration"), "{out}");
}

#[test]
fn the_config_file_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mine.toml");
    std::fs::write(
        &file,
        format!("[database]\nurl = \"{}\"\n", sqlite_url(&dir)),
    )
    .expect("write");
    let file = file.display().to_string();
    let output = run(&mut licenses(&["migrate", "--config", &file]));
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert!(dir.path().join("licenses.db").is_file());
}

#[test]
fn help_explains_the_commands() {
    let output = run(&mut licenses(&["--help"]));
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "serve",
        "migrate",
        "--config",
        "APP_ENV",
        "LICENSES__DATABASE__URL",
    ] {
        assert!(help.contains(needle), "{needle} missing from: {help}");
    }
    for command in ["serve", "migrate"] {
        let output = run(&mut licenses(&[command, "--help"]));
        assert!(output.status.success());
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(help.contains("--config"), "{command}: {help}");
        assert!(help.contains("Examples"), "{command}: {help}");
    }
}

/// The `HOST:PORT` a log line gives for `field` (`user_api=127.0.0.1:41234`).
fn field<'a>(line: &'a str, field: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(field)?.strip_prefix('='))
}

#[test]
fn serve_answers_health_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut running = ServiceProcess::builder(env!("CARGO_BIN_EXE_licenses"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LICENSES__DATABASE__URL", sqlite_url(&dir))
        .spawn();
    let listening = running
        .stdout_line_containing("listening", Duration::from_secs(60))
        .expect("serve logs `listening` within a minute");
    let user = field(&listening, "user_api").expect("user_api in the log line");
    let management = field(&listening, "management_api").expect("management_api in the log");
    assert_ne!(user, management);

    for addr in [user, management] {
        let mut stream = std::net::TcpStream::connect(addr).expect("connects");
        use std::io::{Read, Write};
        stream
            .write_all(b"GET /health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("writes");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("reads");
        assert!(answer.starts_with("HTTP/1.1 200"), "{addr}: {answer}");
        assert!(answer.contains(r#"{"status":"ok"}"#), "{addr}: {answer}");
    }

    running.terminate();
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = running.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = running.stderr();
    assert!(status.success(), "exit status {status:?}; stderr: {err}");
    assert!(
        err.is_empty(),
        "nothing on stderr when all goes well: {err}"
    );
}
