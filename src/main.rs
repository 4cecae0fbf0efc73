//! `licenses`: see `licenses --help`, README.md and docs/architecture.md.

fn main() -> std::process::ExitCode {
    licenses::cli::main()
}
