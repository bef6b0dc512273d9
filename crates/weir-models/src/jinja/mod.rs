//! dbt's Jinja on minijinja: the value model, the compile context and the macro runtime.
//!
//! - `value`: mutable [`List`] and [`Dict`] objects (dbt mutates lists and dicts in place).
//! - `rewrite`: the token pass that makes list/dict literals build those objects and renames
//!   macros so that every macro call goes through weir's runtime.
//! - `runtime`: [`Engine`] (macro packages, `adapter.dispatch`, `return()`, `caller()`).
//! - `context`: [`CompileContext`], what the caller tells about the node being compiled.
//! - `adapter`: the [`Adapter`] seam to the warehouse and the relation/column/table values.
//! - `globals`: `zip`, `set`, `modules`, `exceptions`, `api`, ...
//! - `builtins`: weir's own `dbt` namespace macros (`statement`, `type_string`, `dateadd`, ...).
//!
//! Entry point: `Engine::builder(root, adapter).package(..).build()?.compile(name, sql, ctx)`.

pub mod adapter;
mod builtins;
pub mod context;
pub mod error;
mod globals;
pub mod rewrite;
pub mod runtime;
pub mod value;

pub use adapter::{Adapter, AdapterError, Column, Relation, Table};
pub use context::{CompileContext, RefCall, Resolver};
pub use error::JinjaError;
pub use runtime::{Compiled, Engine, EngineBuilder, INTERNAL_PACKAGE, MacroPackage};
pub use value::{Dict, List, Set, py_repr};
