//! dbt Jinja: the value model, the compile context and the macro runtime.
