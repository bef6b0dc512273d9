//! weir-models integration tests.

mod jinja;
mod project;
mod run;
