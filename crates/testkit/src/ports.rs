//! Free TCP ports on 127.0.0.1, for the processes and listeners a test starts.

use std::net::TcpListener;

/// A port on 127.0.0.1 that was free a moment ago (nothing holds it afterwards), for a process
/// or listener a test starts.
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    find_free_port().expect("a free port on 127.0.0.1")
}

/// [`free_port`], as a result.
pub(crate) fn find_free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}
