//! `[console]`: the support console under `/console/` on the management listener
//! (docs/console.md): on or off, and how long its sessions last.

use std::time::Duration;

use serde::Deserialize;

use super::Problem;

/// `[console]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Whether the management listener serves the console.
    pub enabled: bool,
    /// A session unused this many minutes is over.
    pub session_idle_minutes: u64,
    /// A session is over this many minutes after sign-in, however busy.
    pub session_absolute_minutes: u64,
    /// Most sessions at once; beyond, the least recently used one is ended.
    pub max_sessions: usize,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            session_idle_minutes: 30,
            session_absolute_minutes: 480,
            max_sessions: 1000,
        }
    }
}

impl ConsoleSettings {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.session_idle_minutes.saturating_mul(60))
    }

    pub fn absolute_timeout(&self) -> Duration {
        Duration::from_secs(self.session_absolute_minutes.saturating_mul(60))
    }

    /// The problems of `console.*`.
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if self.session_idle_minutes == 0 {
            problems.push(Problem::new(
                "console.session_idle_minutes",
                "must be at least 1",
            ));
        }
        if self.session_absolute_minutes < self.session_idle_minutes {
            problems.push(Problem::new(
                "console.session_absolute_minutes",
                "must be at least console.session_idle_minutes",
            ));
        }
        if self.max_sessions == 0 {
            problems.push(Problem::new("console.max_sessions", "must be at least 1"));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::load;
    use crate::settings::test_sources::{message, sources, with_vars};

    #[test]
    fn the_console_is_on_with_half_an_hour_idle_and_eight_hours_at_most() {
        let s = load(&sources("local")).expect("loads");
        assert!(s.console.enabled);
        assert_eq!(s.console.idle_timeout().as_secs(), 30 * 60);
        assert_eq!(s.console.absolute_timeout().as_secs(), 8 * 3600);
        assert_eq!(s.console.max_sessions, 1000);
    }

    #[test]
    fn timeouts_must_make_sense() {
        let m = message(load(&with_vars(
            "local",
            &[
                ("LICENSES__CONSOLE__SESSION_IDLE_MINUTES", "0"),
                ("LICENSES__CONSOLE__MAX_SESSIONS", "0"),
            ],
        )));
        assert!(
            m.contains("console.session_idle_minutes: must be at least 1"),
            "{m}"
        );
        assert!(
            m.contains("console.max_sessions: must be at least 1"),
            "{m}"
        );
        let m = message(load(&with_vars(
            "local",
            &[("LICENSES__CONSOLE__SESSION_ABSOLUTE_MINUTES", "10")],
        )));
        assert_eq!(
            m,
            "console.session_absolute_minutes: must be at least console.session_idle_minutes"
        );
    }
}
