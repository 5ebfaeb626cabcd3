//! The test crate has no library code; its tests live in `api/` and `e2e/`.
