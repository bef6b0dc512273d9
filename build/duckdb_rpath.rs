//! The build script of every crate that links DuckDB: an rpath to DuckDB's shared library, so
//! binaries and tests find it without LD_LIBRARY_PATH (`DUCKDB_LIB_DIR` comes from .cargo/config.toml; see scripts/duckdb.sh).
fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR")
        && std::env::var_os("CARGO_FEATURE_BUNDLED").is_none()
    {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
