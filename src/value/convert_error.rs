//! The error of a conversion between a serde type and a [`Value`](super::Value).

use std::fmt;

/// A serde type could not be converted to or from a [`Value`](super::Value).
///
/// The message names what was expected and what was found, e.g.
/// `invalid type: string "x", expected i64`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError(String);

impl ConvertError {
    /// An error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        ConvertError(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConvertError {}

impl serde::ser::Error for ConvertError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ConvertError(msg.to_string())
    }
}

impl serde::de::Error for ConvertError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ConvertError(msg.to_string())
    }
}
