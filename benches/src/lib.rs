//! Shared helpers live in the bench files; this crate has no library code.
