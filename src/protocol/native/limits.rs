//! [`DecodeLimits`]: what one decoded frame may hold besides its length. The decoder refuses a
//! frame past them, and the encoders refuse to write what a decoder with the same limits would
//! refuse.

/// Bounds on what one decoded frame may hold, besides its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Deepest nesting of containers (default 64).
    pub max_depth: usize,
    /// Most values (every scalar and container counts one) in one frame (default 1,048,576).
    pub max_values: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits { max_depth: 64, max_values: 1 << 20 }
    }
}
