//! postgres runtime.
