//! Use cases and the ports (traits) they drive
