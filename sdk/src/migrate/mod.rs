//! migrate runtime.
