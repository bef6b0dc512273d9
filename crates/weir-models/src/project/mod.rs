//! Reading a dbt project: settings, profiles, packages, nodes, configs, selection.
