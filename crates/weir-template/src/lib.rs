//! weir-template: Jinja with Airflow context (being written).
