//! The macro runtime: macro files of several packages in one minijinja `Environment`, bare and
//! namespaced macro calls, `adapter.dispatch`, and `return()`.
//!
//! How a macro call works: every macro file is compiled once as its own template, with its
//! macros renamed `__weir_macro__<name>` (see `rewrite`). A name such as `star` or
//! `dbt_utils.star` resolves to a [`MacroRef`], never to minijinja's macro value. Calling it
//! renders the macro's file into a fresh `State` (which only defines the file's macros), looks
//! up the renamed macro in that state and calls it there. `return(x)` fails the render with an
//! error whose source carries `x`; the `MacroRef` that started this macro call recognises that
//! error and yields `x` as the call's value. Because each macro call has its own state, the
//! return of an inner macro never escapes into its caller.
//!
//! The root context of every state is a [`Frame`]: it answers the node's names (`ref`, `this`,
//! `config`, ...), engine names (`adapter`, `load_result`, ...), and macro names, looked up in
//! the calling macro's own package first, then the root project, then weir's `dbt` built-ins.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Rest, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior};

use super::adapter::{Adapter, Column, Relation, Table, quote_identifier, table_value};
use super::context::{CompileContext, RefCall};
use super::error::JinjaError;
use super::rewrite::{DICT_CTOR, LIST_CTOR, MACRO_PREFIX, rewrite};
use super::value::{Dict, List, prints_as_python, py_repr, split_args, to_mutable};
use super::{builtins, globals};

/// The package name of weir's built-in macros (dbt's `dbt` namespace).
pub const INTERNAL_PACKAGE: &str = "dbt";
const FRAME_KEY: &str = "__weir_frame";
/// Deeper macro nesting than this is taken for runaway recursion.
const MAX_MACRO_DEPTH: usize = 64;

#[derive(Debug, Clone)]
struct MacroDef {
    template: String,
    line: usize,
}

struct Shared {
    root: String,
    /// package -> macro name -> definition.
    packages: HashMap<String, HashMap<String, MacroDef>>,
    /// macro_namespace -> packages to search, from the root project's `dispatch:`.
    dispatch: HashMap<String, Vec<String>>,
    adapter: Arc<dyn Adapter>,
}

impl Shared {
    fn find(&self, package: &str, name: &str) -> Option<Value> {
        let def = self.packages.get(package)?.get(name)?;
        Some(Value::from_object(MacroRef {
            package: package.to_string(),
            name: name.to_string(),
            template: def.template.clone(),
        }))
    }

    /// A bare macro name as seen from `package`: own package, root project, built-ins.
    fn find_bare(&self, package: &str, name: &str) -> Option<Value> {
        self.find(package, name)
            .or_else(|| self.find(&self.root, name))
            .or_else(|| self.find(INTERNAL_PACKAGE, name))
    }

    fn adapter_prefixes(&self) -> Vec<String> {
        let dialect = self.adapter.dialect().to_string();
        let mut prefixes = vec![dialect.clone()];
        // Adapters built on another one search their parent's implementations too.
        if matches!(dialect.as_str(), "redshift") {
            prefixes.push("postgres".to_string());
        }
        prefixes.push("default".to_string());
        prefixes
    }

    fn dispatch(&self, name: &str, namespace: Option<&str>) -> Result<Value, Error> {
        let search: Vec<String> = match namespace {
            Some(ns) => {
                let mut order = self
                    .dispatch
                    .get(ns)
                    .cloned()
                    .unwrap_or_else(|| vec![ns.to_string()]);
                if !order.iter().any(|p| p == ns) {
                    order.push(ns.to_string());
                }
                order
            }
            None => vec![self.root.clone(), INTERNAL_PACKAGE.to_string()],
        };
        let prefixes = self.adapter_prefixes();
        for package in &search {
            for prefix in &prefixes {
                if let Some(m) = self.find(package, &format!("{prefix}__{name}")) {
                    return Ok(m);
                }
            }
        }
        let tried: Vec<String> = prefixes.iter().map(|p| format!("'{p}__{name}'")).collect();
        Err(Error::new(
            ErrorKind::UnknownFunction,
            format!(
                "in dispatch: no macro named '{name}' found within namespace '{}' (searched for {} in packages {})",
                namespace.unwrap_or("<global>"),
                tried.join(", "),
                search
                    .iter()
                    .map(|p| format!("'{p}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
}

/// Per-compile state shared by every macro call of one compile.
struct CompileState {
    ctx: CompileContext,
    results: Mutex<HashMap<String, Value>>,
    logs: Mutex<Vec<String>>,
    depth: AtomicUsize,
}

/// The root context of every template state (see the module docs).
struct Frame {
    shared: Arc<Shared>,
    compile: Arc<CompileState>,
    package: String,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<frame of package {}>", self.package)
    }
}

fn frame_of(state: &State) -> Result<Arc<Frame>, Error> {
    state
        .lookup(FRAME_KEY)
        .and_then(|v| v.downcast_object::<Frame>())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                "dbt context is missing (template not rendered by weir's engine)",
            )
        })
}

impl Object for Frame {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        if name == FRAME_KEY {
            return Some(Value::from_dyn_object(self.clone()));
        }
        // A root-project macro may override a context function (dbt allows overriding
        // `ref`), so macros of the own package and the root come first.
        if let Some(m) = self
            .shared
            .find(&self.package, name)
            .or_else(|| self.shared.find(&self.shared.root, name))
        {
            return Some(m);
        }
        if let Some(v) = self.context_value(name) {
            return Some(v);
        }
        if let Some(m) = self.shared.find(INTERNAL_PACKAGE, name) {
            return Some(m);
        }
        if self.shared.packages.contains_key(name) {
            return Some(Value::from_object(Namespace {
                shared: self.shared.clone(),
                package: name.to_string(),
            }));
        }
        None
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }
}

impl Frame {
    fn context_value(self: &Arc<Self>, name: &str) -> Option<Value> {
        let ctx = &self.compile.ctx;
        Some(match name {
            "this" => ctx
                .this
                .clone()
                .map(Relation::into_value)
                .unwrap_or(Value::from(())),
            "target" => to_mutable(Value::from(minijinja::value::Serde(&ctx.target))),
            "model" => to_mutable(Value::from(minijinja::value::Serde(&ctx.model))),
            "execute" => Value::from(ctx.execute),
            "flags" => Value::from_object(Flags {
                which: ctx.which.clone(),
            }),
            "project_name" => Value::from(self.shared.root.clone()),
            "adapter" => Value::from_object(AdapterObject {
                shared: self.shared.clone(),
            }),
            "ref" | "source" | "config" | "var" | "env_var" | "is_incremental" | "load_result"
            | "store_result" | "load_relation" | "log" | "print" | "exceptions" => {
                Value::from_object(ContextFn {
                    frame: self.clone(),
                    name: name.to_string(),
                })
            }
            "builtins" => Value::from_object(Builtins {
                frame: self.clone(),
            }),
            "run_started_at" => globals::datetime_value(ctx.run_started_at),
            _ => return ctx.extra.get(name).map(json_to_value),
        })
    }
}

#[derive(Debug)]
struct Flags {
    which: String,
}

impl Object for Flags {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "WHICH" => Value::from(self.which.clone()),
            "FULL_REFRESH" | "EMPTY" | "STORE_FAILURES" | "WARN_ERROR" => Value::from(false),
            _ => return None,
        })
    }
}

/// `builtins.ref` and friends: the context functions even when a macro overrides the name.
struct Builtins {
    frame: Arc<Frame>,
}

impl std::fmt::Debug for Builtins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<builtins>")
    }
}

impl Object for Builtins {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.frame.context_value(key.as_str()?)
    }
}

/// A package's macros as attributes: `dbt_utils.star`, `dbt.type_string`.
struct Namespace {
    shared: Arc<Shared>,
    package: String,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<namespace {}>", self.package)
    }
}

impl Object for Namespace {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        self.shared.find(&self.package, name).or_else(|| {
            // dbt's own namespace also answers the adapter-agnostic names of its
            // adapter-specific packages; weir keeps them all in one package.
            None
        })
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match self.shared.find(&self.package, method) {
            Some(m) => m.call(state, args),
            None => Err(Error::new(
                ErrorKind::UnknownFunction,
                format!("no macro named '{method}' in package '{}'", self.package),
            )),
        }
    }
}

/// A callable dbt macro (see the module docs for how a call runs).
#[derive(Debug)]
pub struct MacroRef {
    package: String,
    name: String,
    template: String,
}

/// Carries the value of `return(x)` out of the macro's render.
#[derive(Debug)]
struct ReturnSignal(Value);

impl std::fmt::Display for ReturnSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "return({})", py_repr(&self.0))
    }
}

impl std::error::Error for ReturnSignal {}

fn returned_value(err: &Error) -> Option<Value> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(s) = source {
        if let Some(signal) = s.downcast_ref::<ReturnSignal>() {
            return Some(signal.0.clone());
        }
        source = s.source();
    }
    None
}

/// The body of a `{% call %}` block, rendered in the caller's state before the macro runs.
///
/// minijinja refuses to run a macro in a state other than the one that defined it, and the
/// callee runs in its own state; rendering the body up front is what lets `caller()` work. The
/// body is rendered once even if the macro never calls `caller()`, and `caller(args)` is not
/// supported.
#[derive(Debug)]
struct RenderedCaller(Value);

impl Object for RenderedCaller {
    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        if !args.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "caller() with arguments is not supported by weir",
            ));
        }
        Ok(self.0.clone())
    }
}

fn prerender_caller(state: &mut State, args: &[Value]) -> Result<Vec<Value>, Error> {
    let (positional, kwargs) = split_args(args);
    let Some(kwargs) = kwargs.filter(|kw| kw.has("caller")) else {
        return Ok(args.to_vec());
    };
    let mut pairs = Vec::new();
    for key in kwargs.args() {
        let mut value: Value = kwargs.peek(key)?;
        if key == "caller" && value.downcast_object_ref::<RenderedCaller>().is_none() {
            let body = value.call(state, &[])?;
            value = Value::from_object(RenderedCaller(body));
        }
        pairs.push((key.to_string(), value));
    }
    let mut out = positional.to_vec();
    out.push(Value::from(Kwargs::from_iter(pairs)));
    Ok(out)
}

/// Jinja's implicit macro arguments: a macro whose body reads `varargs` or `kwargs` (the
/// rewrite pass declared them as parameters) receives the extra positional arguments as a
/// list and the extra keyword arguments as a dict, as Jinja2 does.
fn bind_implicit_args(name: &str, m: &Value, args: &[Value]) -> Result<Vec<Value>, Error> {
    let declared: Vec<String> = m
        .get_attr("arguments")
        .ok()
        .and_then(|a| a.try_iter().ok())
        .map(|it| it.filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let takes_kwargs = declared.iter().any(|n| n == "kwargs");
    let takes_varargs = declared.iter().any(|n| n == "varargs");
    if !takes_kwargs && !takes_varargs {
        return Ok(args.to_vec());
    }
    let named: Vec<&String> = declared
        .iter()
        .filter(|n| *n != "kwargs" && *n != "varargs")
        .collect();
    let (positional, kwargs) = split_args(args);
    let cut = positional.len().min(named.len());
    if !takes_varargs && positional.len() > named.len() {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            format!(
                "macro '{name}' takes {} positional argument(s), {} given",
                named.len(),
                positional.len()
            ),
        ));
    }
    let (keep, extra) = positional.split_at(cut);
    let mut pairs: Vec<(String, Value)> = Vec::new();
    let mut extra_kwargs: Vec<(Value, Value)> = Vec::new();
    if let Some(kw) = kwargs {
        for key in kw.args() {
            let value: Value = kw.peek(key)?;
            if !takes_kwargs || key == "caller" || named.iter().any(|n| n.as_str() == key) {
                pairs.push((key.to_string(), value));
            } else {
                extra_kwargs.push((Value::from(key), value));
            }
        }
    }
    if takes_varargs {
        pairs.push(("varargs".to_string(), List::new_value(extra.to_vec())));
    }
    if takes_kwargs {
        pairs.push(("kwargs".to_string(), Dict::new_value(extra_kwargs)));
    }
    let mut out = keep.to_vec();
    out.push(Value::from(Kwargs::from_iter(pairs)));
    Ok(out)
}

struct DepthGuard<'a>(&'a AtomicUsize);

impl Drop for DepthGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Object for MacroRef {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let frame = frame_of(state)?;
        let depth = frame.compile.depth.fetch_add(1, Ordering::Relaxed) + 1;
        let _guard = DepthGuard(&frame.compile.depth);
        if depth > MAX_MACRO_DEPTH {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "macro '{}' nested deeper than {MAX_MACRO_DEPTH} calls (runaway recursion?)",
                    self.name
                ),
            ));
        }
        let args = prerender_caller(state, args)?;
        let template = state.env().get_template(&self.template)?;
        let ctx = Value::from_object(Frame {
            shared: frame.shared.clone(),
            compile: frame.compile.clone(),
            package: self.package.clone(),
        });
        let mut captured = template.render_captured(ctx)?;
        let key = format!("{MACRO_PREFIX}{}", self.name);
        let result = captured.with_state_mut(|st| match st.lookup(&key) {
            Some(m) => {
                let args = bind_implicit_args(&self.name, &m, &args)?;
                m.call(st, &args)
            }
            None => Err(Error::new(
                ErrorKind::UnknownFunction,
                format!("macro '{}' not found in {}", self.name, self.template),
            )),
        });
        match result {
            Ok(v) => Ok(v),
            Err(err) => match returned_value(&err) {
                Some(v) => Ok(v),
                None => Err(err),
            },
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<macro {}.{}>", self.package, self.name)
    }
}

fn arg(positional: &[Value], kwargs: &Option<Kwargs>, idx: usize, name: &str) -> Option<Value> {
    if let Some(v) = positional.get(idx) {
        return Some(v.clone());
    }
    match kwargs {
        Some(kw) if kw.has(name) => kw.peek::<Value>(name).ok(),
        _ => None,
    }
}

fn need(
    positional: &[Value],
    kwargs: &Option<Kwargs>,
    idx: usize,
    name: &str,
    func: &str,
) -> Result<Value, Error> {
    arg(positional, kwargs, idx, name).ok_or_else(|| {
        Error::new(
            ErrorKind::MissingArgument,
            format!("{func}() is missing its argument '{name}'"),
        )
    })
}

fn adapter_err(err: super::adapter::AdapterError) -> Error {
    Error::new(ErrorKind::InvalidOperation, err.0)
}

fn relation_arg(value: &Value, func: &str) -> Result<Arc<Relation>, Error> {
    value.downcast_object::<Relation>().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("{func}() expected a relation, got {}", py_repr(value)),
        )
    })
}

fn columns_value(columns: Vec<Column>) -> Value {
    List::new_value(columns.into_iter().map(Value::from_object).collect())
}

/// `adapter`: dispatch, quoting and warehouse metadata.
struct AdapterObject {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AdapterObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<adapter {}>", self.shared.adapter.dialect())
    }
}

impl Object for AdapterObject {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "type" => None,
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (pos, kwargs) = split_args(args);
        let adapter = &self.shared.adapter;
        match method {
            "dispatch" => {
                let name = need(pos, &kwargs, 0, "macro_name", "adapter.dispatch")?;
                let namespace = arg(pos, &kwargs, 1, "macro_namespace").filter(|v| !v.is_none());
                let name = name.as_str().unwrap_or_default().to_string();
                let namespace = namespace
                    .as_ref()
                    .and_then(|v| v.as_str().map(str::to_string));
                self.shared.dispatch(&name, namespace.as_deref())
            }
            "quote" | "quote_as_configured" => {
                let ident = need(pos, &kwargs, 0, "identifier", "adapter.quote")?;
                Ok(Value::from(quote_identifier(
                    &ident.to_string(),
                    adapter.quote_char(),
                )))
            }
            "type" => Ok(Value::from(adapter.dialect().to_string())),
            "get_columns_in_relation" => {
                let rel = need(
                    pos,
                    &kwargs,
                    0,
                    "relation",
                    "adapter.get_columns_in_relation",
                )?;
                let rel = relation_arg(&rel, "adapter.get_columns_in_relation")?;
                let columns = adapter.get_columns_in_relation(&rel).map_err(adapter_err)?;
                Ok(columns_value(columns))
            }
            "get_relation" => {
                let database = arg(pos, &kwargs, 0, "database").filter(|v| !v.is_none());
                let schema = need(pos, &kwargs, 1, "schema", "adapter.get_relation")?;
                let identifier = need(pos, &kwargs, 2, "identifier", "adapter.get_relation")?;
                let database = database.map(|d| d.to_string());
                let found = adapter
                    .get_relation(
                        database.as_deref(),
                        &schema.to_string(),
                        &identifier.to_string(),
                    )
                    .map_err(adapter_err)?;
                Ok(found.map(Relation::into_value).unwrap_or(Value::from(())))
            }
            "load_relation" => load_relation(&self.shared, pos, &kwargs),
            "execute" => {
                let sql = need(pos, &kwargs, 0, "sql", "adapter.execute")?;
                let fetch = arg(pos, &kwargs, 2, "fetch").is_some_and(|v| v.is_true());
                let table = adapter
                    .execute(&sql.to_string(), fetch)
                    .map_err(adapter_err)?;
                let response = Dict::new_value([
                    (Value::from("_message"), Value::from("OK")),
                    (Value::from("code"), Value::from("OK")),
                    (
                        Value::from("rows_affected"),
                        Value::from(table.rows.len() as i64),
                    ),
                ]);
                Ok(Value::from(vec![response, table_value(table)]))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("adapter has no method named '{method}'"),
            )),
        }
    }
}

fn load_relation(shared: &Shared, pos: &[Value], kwargs: &Option<Kwargs>) -> Result<Value, Error> {
    let rel = need(pos, kwargs, 0, "relation", "load_relation")?;
    let rel = relation_arg(&rel, "load_relation")?;
    let Some(identifier) = rel.identifier.as_deref() else {
        return Ok(Value::from(()));
    };
    let found = shared
        .adapter
        .get_relation(
            rel.database.as_deref(),
            rel.schema.as_deref().unwrap_or(""),
            identifier,
        )
        .map_err(adapter_err)?;
    Ok(found.map(Relation::into_value).unwrap_or(Value::from(())))
}

/// A context function bound to the frame it was looked up in.
struct ContextFn {
    frame: Arc<Frame>,
    name: String,
}

impl std::fmt::Debug for ContextFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<function {}>", self.name)
    }
}

fn json_to_value(v: &serde_json::Value) -> Value {
    to_mutable(Value::from(minijinja::value::Serde(v)))
}

impl ContextFn {
    fn config_get(
        &self,
        pos: &[Value],
        kwargs: &Option<Kwargs>,
        require: bool,
    ) -> Result<Value, Error> {
        let key = need(pos, kwargs, 0, "name", "config.get")?.to_string();
        let config = self
            .frame
            .compile
            .ctx
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match config.get(&key) {
            Some(v) => Ok(json_to_value(v)),
            None if require => Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("missing config: '{key}'"),
            )),
            None => Ok(arg(pos, kwargs, 1, "default").unwrap_or(Value::from(()))),
        }
    }
}

impl Object for ContextFn {
    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (pos, kwargs) = split_args(args);
        let compile = &self.frame.compile;
        let ctx = &compile.ctx;
        match self.name.as_str() {
            "ref" => {
                let strings: Vec<String> = pos.iter().map(|v| v.to_string()).collect();
                let (package, name) = match strings.as_slice() {
                    [name] => (None, name.clone()),
                    [package, name] => (Some(package.clone()), name.clone()),
                    _ => {
                        return Err(Error::new(
                            ErrorKind::InvalidOperation,
                            format!("ref() takes 1 or 2 names, got {}", pos.len()),
                        ));
                    }
                };
                let version = ["v", "version"]
                    .iter()
                    .find_map(|k| arg(&[], &kwargs, 0, k))
                    .map(|v| v.to_string());
                let call = RefCall {
                    package,
                    name,
                    version,
                };
                let resolver = ctx.resolver.as_ref().ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, "ref() is not available here")
                })?;
                let rel = resolver
                    .resolve_ref(&call)
                    .map_err(|e| Error::new(ErrorKind::InvalidOperation, e))?;
                Ok(rel.into_value())
            }
            "source" => {
                let source = need(pos, &kwargs, 0, "source_name", "source")?.to_string();
                let table = need(pos, &kwargs, 1, "table_name", "source")?.to_string();
                let resolver = ctx.resolver.as_ref().ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        "source() is not available here",
                    )
                })?;
                let rel = resolver
                    .resolve_source(&source, &table)
                    .map_err(|e| Error::new(ErrorKind::InvalidOperation, e))?;
                Ok(rel.into_value())
            }
            "config" => {
                if let Some(kw) = &kwargs {
                    let mut config = ctx.config.lock().unwrap_or_else(|e| e.into_inner());
                    for key in kw.args() {
                        let v: Value = kw.peek(key)?;
                        let json = serde_json::to_value(&v).map_err(|e| {
                            Error::new(
                                ErrorKind::InvalidOperation,
                                format!("config value '{key}' cannot be stored: {e}"),
                            )
                        })?;
                        config.insert(key.to_string(), json);
                    }
                }
                Ok(Value::from(""))
            }
            "var" => {
                let name = need(pos, &kwargs, 0, "name", "var")?.to_string();
                match ctx.vars.get(&name) {
                    Some(v) => Ok(json_to_value(v)),
                    None => arg(pos, &kwargs, 1, "default").ok_or_else(|| {
                        Error::new(
                            ErrorKind::InvalidOperation,
                            format!("required var '{name}' not found in config (vars of dbt_project.yml or --vars)"),
                        )
                    }),
                }
            }
            "env_var" => {
                let name = need(pos, &kwargs, 0, "name", "env_var")?.to_string();
                let found = match &ctx.env_vars {
                    Some(env) => env.get(&name).cloned(),
                    None => std::env::var(&name).ok(),
                };
                match found {
                    Some(v) => Ok(Value::from(v)),
                    None => arg(pos, &kwargs, 1, "default").ok_or_else(|| {
                        Error::new(
                            ErrorKind::InvalidOperation,
                            format!("env var required but not provided: '{name}'"),
                        )
                    }),
                }
            }
            "is_incremental" => Ok(Value::from(ctx.is_incremental)),
            "store_result" => {
                let name = need(pos, &kwargs, 0, "name", "store_result")?.to_string();
                let response = arg(pos, &kwargs, 1, "response").unwrap_or(Value::from(()));
                let table = arg(pos, &kwargs, 2, "agate_table").unwrap_or(Value::from(()));
                let data = match table.get_attr("rows") {
                    Ok(rows) if !rows.is_undefined() => {
                        let rows: Vec<Value> = rows
                            .try_iter()?
                            .map(|r| {
                                Value::from(
                                    r.try_iter()
                                        .map(|i| i.collect::<Vec<_>>())
                                        .unwrap_or_default(),
                                )
                            })
                            .collect();
                        Value::from(rows)
                    }
                    _ => Value::from(Vec::<Value>::new()),
                };
                let result = Dict::new_value([
                    (Value::from("response"), response),
                    (Value::from("data"), data),
                    (Value::from("table"), table),
                ]);
                compile
                    .results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name, result);
                Ok(Value::from(""))
            }
            "load_result" => {
                let name = need(pos, &kwargs, 0, "name", "load_result")?.to_string();
                Ok(compile
                    .results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&name)
                    .cloned()
                    .unwrap_or(Value::from(())))
            }
            "load_relation" => load_relation(&self.frame.shared, pos, &kwargs),
            "log" | "print" => {
                let msg = pos.first().map(|v| v.to_string()).unwrap_or_default();
                compile
                    .logs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(msg);
                Ok(Value::from(""))
            }
            other => Err(Error::new(
                ErrorKind::UnknownFunction,
                format!("unknown context function '{other}'"),
            )),
        }
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (pos, kwargs) = split_args(args);
        match (self.name.as_str(), method) {
            ("config", "get") => self.config_get(pos, &kwargs, false),
            ("config", "require") => self.config_get(pos, &kwargs, true),
            // Warnings go to the compile's log lines, next to log() and print().
            ("exceptions", "warn") => {
                let msg = pos.first().map(|v| v.to_string()).unwrap_or_default();
                self.frame
                    .compile
                    .logs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("warning: {msg}"));
                Ok(Value::from(""))
            }
            ("exceptions", _) => globals::module("exceptions").call_method(state, method, args),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("{} has no method named '{method}'", self.name),
            )),
        }
    }
}

/// One package's macro files: `(path shown in errors, source)`.
#[derive(Debug, Clone)]
pub struct MacroPackage {
    pub name: String,
    pub files: Vec<(String, String)>,
}

impl MacroPackage {
    pub fn new(name: &str) -> MacroPackage {
        MacroPackage {
            name: name.to_string(),
            files: Vec::new(),
        }
    }

    /// Adds one macro file.
    pub fn with_file(mut self, path: &str, source: &str) -> MacroPackage {
        self.files.push((path.to_string(), source.to_string()));
        self
    }

    /// Reads every `*.sql` file under `dir` (recursively, in path order); paths in errors are
    /// shown as `display_prefix` joined with the path relative to `dir`.
    pub fn from_dir(
        name: &str,
        dir: &Path,
        display_prefix: &str,
    ) -> Result<MacroPackage, JinjaError> {
        let mut files = Vec::new();
        collect_sql(dir, &mut files)?;
        files.sort();
        let mut package = MacroPackage::new(name);
        for path in files {
            let source = std::fs::read_to_string(&path).map_err(|source| JinjaError::Io {
                path: path.display().to_string(),
                source,
            })?;
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            let shown = Path::new(display_prefix).join(rel).display().to_string();
            package.files.push((shown, source));
        }
        Ok(package)
    }
}

fn collect_sql(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), JinjaError> {
    let entries = std::fs::read_dir(dir).map_err(|source| JinjaError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| JinjaError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() {
            collect_sql(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "sql") {
            out.push(path);
        }
    }
    Ok(())
}

/// Builds an [`Engine`] from packages.
pub struct EngineBuilder {
    root: String,
    adapter: Arc<dyn Adapter>,
    packages: Vec<MacroPackage>,
    dispatch: HashMap<String, Vec<String>>,
    builtins: bool,
}

impl EngineBuilder {
    /// Adds a package's macros (the root project's own macros too).
    pub fn package(mut self, package: MacroPackage) -> EngineBuilder {
        self.packages.push(package);
        self
    }

    /// A `dispatch:` entry of the root dbt_project.yml.
    pub fn dispatch(mut self, macro_namespace: &str, search_order: &[&str]) -> EngineBuilder {
        self.dispatch.insert(
            macro_namespace.to_string(),
            search_order.iter().map(|s| s.to_string()).collect(),
        );
        self
    }

    /// Leaves out weir's built-in `dbt` macros (for tests of the runtime itself).
    pub fn without_builtins(mut self) -> EngineBuilder {
        self.builtins = false;
        self
    }

    /// Compiles every macro file; reports all broken files and duplicate macros at once.
    pub fn build(self) -> Result<Engine, JinjaError> {
        let mut env = new_environment();
        let mut packages: HashMap<String, HashMap<String, MacroDef>> = HashMap::new();
        let mut errors = Vec::new();
        let mut all = self.packages;
        if self.builtins {
            all.insert(0, builtins::package());
        }
        packages.entry(self.root.clone()).or_default();
        let mut names = std::collections::HashSet::new();
        for package in &all {
            for (path, source) in &package.files {
                let rewritten = rewrite(source, true);
                // A second file shown under the same path would replace the first template.
                let mut template = path.clone();
                if !names.insert(template.clone()) {
                    template = format!("{path} (package {})", package.name);
                    names.insert(template.clone());
                }
                if let Err(err) = env.add_template_owned(template.clone(), rewritten.source) {
                    errors.push(JinjaError::from_minijinja(&err));
                    continue;
                }
                let table = packages.entry(package.name.clone()).or_default();
                for decl in rewritten.macros {
                    let def = MacroDef {
                        template: template.clone(),
                        line: decl.line,
                    };
                    if let Some(first) = table.get(&decl.name) {
                        // A later package may not silently replace a macro of the same package.
                        errors.push(JinjaError::DuplicateMacro {
                            package: package.name.clone(),
                            name: decl.name.clone(),
                            first: format!("{}:{}", first.template, first.line),
                            second: format!("{}:{}", def.template, def.line),
                        });
                        continue;
                    }
                    table.insert(decl.name, def);
                }
            }
        }
        if !errors.is_empty() {
            return Err(if errors.len() == 1 {
                errors.remove(0)
            } else {
                JinjaError::Many(errors)
            });
        }
        Ok(Engine {
            env,
            shared: Arc::new(Shared {
                root: self.root,
                packages,
                dispatch: self.dispatch,
                adapter: self.adapter,
            }),
        })
    }
}

fn python_formatter(
    out: &mut minijinja::Output,
    state: &mut State,
    value: &Value,
) -> Result<(), Error> {
    // Python's Jinja prints None/True/False; dbt SQL written against it relies on that.
    if value.is_none() {
        return out.write_str("None").map_err(Error::from);
    }
    if let Some(b) = value.as_bool_strict() {
        return out
            .write_str(if b { "True" } else { "False" })
            .map_err(Error::from);
    }
    if prints_as_python(value) {
        return out.write_str(&py_repr(value)).map_err(Error::from);
    }
    minijinja::escape_formatter(out, state, value)
}

trait StrictBool {
    fn as_bool_strict(&self) -> Option<bool>;
}

impl StrictBool for Value {
    fn as_bool_strict(&self) -> Option<bool> {
        (self.kind() == minijinja::value::ValueKind::Bool).then(|| self.is_true())
    }
}

fn new_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_formatter(python_formatter);
    env.set_unknown_method_callback(globals::unknown_method);
    env.add_function(LIST_CTOR, |items: Rest<Value>| List::new_value(items.0));
    env.add_function(DICT_CTOR, globals::dict_from_pairs);
    env.add_function("return", |value: Option<Value>| -> Result<Value, Error> {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            "return() called outside of a macro",
        )
        .with_source(ReturnSignal(value.unwrap_or(Value::from(())))))
    });
    globals::register(&mut env);
    env
}

/// Compiled macros of all packages, ready to render models against an adapter.
pub struct Engine {
    env: Environment<'static>,
    shared: Arc<Shared>,
}

/// The result of one compile: the SQL and the lines `log()`/`print()` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub sql: String,
    pub logs: Vec<String>,
}

impl Engine {
    /// Starts an engine for the root project `root_package`, reaching the warehouse through
    /// `adapter`.
    pub fn builder(root_package: &str, adapter: Arc<dyn Adapter>) -> EngineBuilder {
        EngineBuilder {
            root: root_package.to_string(),
            adapter,
            packages: Vec::new(),
            dispatch: HashMap::new(),
            builtins: true,
        }
    }

    fn frame(&self, ctx: CompileContext) -> Arc<Frame> {
        let package = ctx.package.clone();
        Arc::new(Frame {
            shared: self.shared.clone(),
            compile: Arc::new(CompileState {
                ctx,
                results: Mutex::new(HashMap::new()),
                logs: Mutex::new(Vec::new()),
                depth: AtomicUsize::new(0),
            }),
            package,
        })
    }

    /// Renders a model (or any dbt SQL) named `name` (shown in errors) with `ctx`.
    pub fn compile(
        &self,
        name: &str,
        sql: &str,
        ctx: CompileContext,
    ) -> Result<Compiled, JinjaError> {
        let rewritten = rewrite(sql, false);
        let template = self
            .env
            .template_from_named_str(name, &rewritten.source)
            .map_err(|e| JinjaError::from_minijinja(&e))?;
        let frame = self.frame(ctx);
        let sql = template
            .render(Value::from_dyn_object(frame.clone()))
            .map_err(|e| JinjaError::from_minijinja(&e))?;
        let logs = frame
            .compile
            .logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Ok(Compiled { sql, logs })
    }

    /// Calls a macro by bare name as the root project would (`generate_schema_name`, a
    /// materialization), with positional `args`; returns its value (its text, or what it
    /// passed to `return()`).
    pub fn call_macro(
        &self,
        name: &str,
        args: &[Value],
        ctx: CompileContext,
    ) -> Result<Value, JinjaError> {
        let frame = self.frame(ctx);
        let Some(m) = self.shared.find_bare(&frame.package, name) else {
            return Err(JinjaError::UnknownMacro(name.to_string()));
        };
        let template = self
            .env
            .template_from_named_str("<call>", "")
            .map_err(|e| JinjaError::from_minijinja(&e))?;
        let mut captured = template
            .render_captured(Value::from_dyn_object(frame))
            .map_err(|e| JinjaError::from_minijinja(&e))?;
        captured
            .with_state_mut(|st| m.call(st, args))
            .map_err(|e| JinjaError::from_minijinja(&e))
    }

    /// Whether `package` defines a macro `name`.
    pub fn has_macro(&self, package: &str, name: &str) -> bool {
        self.shared.find(package, name).is_some()
    }

    /// The adapter-facing name of a table, for callers building results.
    pub fn table_value(table: Table) -> Value {
        table_value(table)
    }
}
