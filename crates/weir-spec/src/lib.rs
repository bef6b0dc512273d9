//! weir-spec: YAML DAG files to validated `weir_core::Dag`s (being written).
