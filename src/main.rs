//! `licenses`: see `licenses --help`, README.md and docs/architecture.md.

/// jemalloc rather than the system allocator: under steady load, glibc's arenas let the
/// service's resident memory creep up (docs/operations.md, "Load and soak").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    licenses::cli::main()
}
