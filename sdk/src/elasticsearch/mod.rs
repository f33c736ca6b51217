//! elasticsearch runtime.
