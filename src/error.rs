//! The one error type for bad input: what the user can fix by changing what they typed or
//! pointed at. Every other failure is an `anyhow::Error` from running.

/// An invalid config or option, a missing or corrupt data set, a backend that cannot run here,
/// a size that cannot fit: one line naming the problem, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);
