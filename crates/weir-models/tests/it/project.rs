//! Project reading tests: the jaffle_shop and dbt_utils fixtures, selection, state, errors.

pub(crate) mod common;
mod errors;
mod fixtures;
mod loading;
mod selection;
