//! The configuration sources the settings tests load: the repository's own `config/`, an
//! environment, and `LICENSES__…` variables given by hand (never the process environment).

use std::path::Path;

use super::{ConfigSources, Settings, SettingsError};

/// The repository's own `config/` directory.
fn repository_config_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
}

pub(super) fn sources(app_env: &str) -> ConfigSources {
    ConfigSources::for_environment(repository_config_dir(), app_env)
}

pub(super) fn with_vars(app_env: &str, vars: &[(&str, &str)]) -> ConfigSources {
    let mut sources = sources(app_env);
    sources.variables = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    sources
}

pub(super) fn message(result: Result<Settings, SettingsError>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}
