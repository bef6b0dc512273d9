//! Project reading tests.
