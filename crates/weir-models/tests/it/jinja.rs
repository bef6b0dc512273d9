//! dbt Jinja tests.
