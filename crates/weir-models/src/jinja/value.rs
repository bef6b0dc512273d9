//! Mutable lists and dicts for dbt's Jinja.
//!
//! minijinja's own sequences and maps are immutable values, while dbt projects and dbt_utils
//! build results in place (`{% do cols.append(c) %}`, `{% do d.update({k: v}) %}`). [`List`] and
//! [`Dict`] are `Object`s holding their items behind a `Mutex`, so a value shared by several
//! variables sees every mutation, exactly as a Python list or dict would. The literal rewriting
//! pass (`rewrite`) makes `[...]` and `{...}` in templates construct these objects.
//!
//! Both print as Python prints them (`['a', 1, None]`, `{'k': True}`), because dbt models that
//! render a list into SQL or a log line expect that text.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, MutexGuard};

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

/// A Python-like list: shared, mutable, ordered.
#[derive(Debug, Default)]
pub struct List {
    items: Mutex<Vec<Value>>,
}

/// A Python-like dict: shared, mutable, insertion-ordered.
#[derive(Debug, Default)]
pub struct Dict {
    items: Mutex<IndexMap<Value, Value>>,
}

thread_local! {
    static NESTING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Deeper nesting than this is taken for a container that contains itself.
const MAX_NESTING: usize = 100;

/// Runs `f` one nesting level deeper, or returns `None` past [`MAX_NESTING`], so that
/// printing or comparing a list that contains itself ends instead of overflowing the stack.
fn nested<R>(f: impl FnOnce() -> R) -> Option<R> {
    let depth = NESTING.with(|n| n.get());
    if depth >= MAX_NESTING {
        return None;
    }
    NESTING.with(|n| n.set(depth + 1));
    let out = f();
    NESTING.with(|n| n.set(depth));
    Some(out)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a Vec or map half-written in a way that
    // matters to a template, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Splits call arguments into positional values and keyword arguments.
pub(crate) fn split_args(args: &[Value]) -> (&[Value], Option<Kwargs>) {
    match args.last() {
        Some(last) if last.is_kwargs() => {
            let kwargs = <Kwargs as minijinja::value::ArgType>::from_value(Some(last)).ok();
            (&args[..args.len() - 1], kwargs)
        }
        _ => (args, None),
    }
}

fn arity(method: &str, args: &[Value], min: usize, max: usize) -> Result<(), Error> {
    if args.len() < min || args.len() > max {
        let want = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(invalid(format!(
            "{method}() takes {want} argument(s), {} given",
            args.len()
        )));
    }
    Ok(())
}

impl List {
    /// A new mutable list value holding `items`.
    pub fn new_value(items: Vec<Value>) -> Value {
        Value::from_object(List {
            items: Mutex::new(items),
        })
    }

    /// A copy of the current items.
    pub fn snapshot(&self) -> Vec<Value> {
        lock(&self.items).clone()
    }

    fn normalize_index(len: usize, idx: i64) -> Option<usize> {
        if idx < 0 {
            len.checked_sub(idx.unsigned_abs() as usize)
        } else {
            let idx = idx as usize;
            (idx < len).then_some(idx)
        }
    }
}

impl Object for List {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = lock(&self.items);
        let idx = Self::normalize_index(items.len(), key.as_i64()?)?;
        items.get(idx).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        // A snapshot, so that a loop body may append to the list it iterates.
        Enumerator::Values(self.snapshot())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(lock(&self.items).len())
    }

    fn is_true(self: &Arc<Self>) -> bool {
        !lock(&self.items).is_empty()
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (args, kwargs) = split_args(args);
        // Comparing items may lock other lists (or this one, if it contains itself), so
        // methods that compare work on a snapshot taken without holding the lock.
        match method {
            "remove" => {
                arity(method, args, 1, 1)?;
                let pos = self.snapshot().iter().position(|x| x == &args[0]);
                return match pos {
                    Some(pos) => {
                        let mut items = lock(&self.items);
                        if pos < items.len() {
                            items.remove(pos);
                        }
                        Ok(Value::from(()))
                    }
                    None => Err(invalid(format!(
                        "list.remove(x): x not in list (x is {})",
                        py_repr(&args[0])
                    ))),
                };
            }
            "sort" => {
                arity(method, args, 0, 0)?;
                let reverse = match &kwargs {
                    Some(kw) => kw.get::<Option<bool>>("reverse")?.unwrap_or(false),
                    None => false,
                };
                let mut sorted = self.snapshot();
                sorted.sort();
                if reverse {
                    sorted.reverse();
                }
                *lock(&self.items) = sorted;
                return Ok(Value::from(()));
            }
            "index" => {
                arity(method, args, 1, 1)?;
                return self
                    .snapshot()
                    .iter()
                    .position(|x| x == &args[0])
                    .map(|p| Value::from(p as i64))
                    .ok_or_else(|| invalid(format!("{} is not in list", py_repr(&args[0]))));
            }
            "count" => {
                arity(method, args, 1, 1)?;
                let n = self.snapshot().iter().filter(|x| *x == &args[0]).count();
                return Ok(Value::from(n as i64));
            }
            _ => {}
        }
        let mut items = lock(&self.items);
        match method {
            "append" => {
                arity(method, args, 1, 1)?;
                items.push(args[0].clone());
                Ok(Value::from(()))
            }
            "extend" => {
                arity(method, args, 1, 1)?;
                let new: Vec<Value> = if same_list(self, &args[0]) {
                    items.clone()
                } else {
                    drop(items);
                    let collected = args[0].try_iter()?.collect();
                    items = lock(&self.items);
                    collected
                };
                items.extend(new);
                Ok(Value::from(()))
            }
            "pop" => {
                arity(method, args, 0, 1)?;
                if items.is_empty() {
                    return Err(invalid("pop from empty list"));
                }
                let idx = match args.first() {
                    Some(v) => v.as_i64().ok_or_else(|| {
                        invalid(format!("list indices must be integers, not '{v}'"))
                    })?,
                    None => -1,
                };
                let idx = Self::normalize_index(items.len(), idx)
                    .ok_or_else(|| invalid(format!("pop index {idx} out of range")))?;
                Ok(items.remove(idx))
            }
            "insert" => {
                arity(method, args, 2, 2)?;
                let idx = args[0].as_i64().ok_or_else(|| {
                    invalid(format!("list indices must be integers, not '{}'", args[0]))
                })?;
                let len = items.len() as i64;
                // Python clamps out-of-range insert positions instead of failing.
                let pos = if idx < 0 {
                    (len + idx).max(0)
                } else {
                    idx.min(len)
                };
                items.insert(pos as usize, args[1].clone());
                Ok(Value::from(()))
            }
            "clear" => {
                arity(method, args, 0, 0)?;
                items.clear();
                Ok(Value::from(()))
            }
            "reverse" => {
                arity(method, args, 0, 0)?;
                items.reverse();
                Ok(Value::from(()))
            }
            "copy" => {
                arity(method, args, 0, 0)?;
                Ok(List::new_value(items.clone()))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("list has no method named '{method}'"),
            )),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &minijinja::value::DynObject) -> Option<Ordering> {
        let other = other.downcast_ref::<List>()?;
        let a = self.snapshot();
        let b = other.snapshot();
        Some(nested(|| a.cmp(&b)).unwrap_or(Ordering::Equal))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_py_seq(&mut out, &self.snapshot(), '[', ']');
        f.write_str(&out)
    }
}

fn same_list(list: &Arc<List>, other: &Value) -> bool {
    other
        .downcast_object_ref::<List>()
        .is_some_and(|o| std::ptr::eq(o, Arc::as_ptr(list)))
}

impl Dict {
    /// A new mutable dict value holding `pairs` (later keys win, as in Python).
    pub fn new_value(pairs: impl IntoIterator<Item = (Value, Value)>) -> Value {
        Value::from_object(Dict {
            items: Mutex::new(pairs.into_iter().collect()),
        })
    }

    /// A copy of the current pairs, in insertion order.
    pub fn snapshot(&self) -> Vec<(Value, Value)> {
        lock(&self.items)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn update_from(&self, other: &Value) -> Result<(), Error> {
        let pairs = pairs_of(other)?;
        for (k, _) in &pairs {
            check_hashable(k)?;
        }
        let mut items = lock(&self.items);
        for (k, v) in pairs {
            items.insert(k, v);
        }
        Ok(())
    }
}

/// Python refuses mutable containers as dict keys; so does weir (hashing one while its dict is
/// locked could also wait on that same lock).
pub(crate) fn check_hashable(key: &Value) -> Result<(), Error> {
    let kind = if key.downcast_object_ref::<List>().is_some() {
        "list"
    } else if key.downcast_object_ref::<Dict>().is_some() {
        "dict"
    } else if key.downcast_object_ref::<Set>().is_some() {
        "set"
    } else {
        return Ok(());
    };
    Err(invalid(format!(
        "unhashable type: '{kind}' (key {})",
        py_repr(key)
    )))
}

/// The key-value pairs of a mapping value, or of a sequence of pairs (what `dict.update` takes).
fn pairs_of(value: &Value) -> Result<Vec<(Value, Value)>, Error> {
    if let Some(d) = value.downcast_object_ref::<Dict>() {
        return Ok(d.snapshot());
    }
    match value.kind() {
        ValueKind::Map => {
            let mut pairs = Vec::new();
            for key in value.try_iter()? {
                let v = value.get_item(&key)?;
                pairs.push((key, v));
            }
            Ok(pairs)
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let mut pairs = Vec::new();
            for item in value.try_iter()? {
                let k = item.get_item_by_index(0)?;
                let v = item.get_item_by_index(1)?;
                pairs.push((k, v));
            }
            Ok(pairs)
        }
        ValueKind::None | ValueKind::Undefined => Ok(Vec::new()),
        _ => Err(invalid(format!(
            "cannot update a dict from {} ({})",
            py_repr(value),
            value.kind()
        ))),
    }
}

impl Object for Dict {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        check_hashable(key).ok()?;
        lock(&self.items).get(key).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(lock(&self.items).keys().cloned().collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(lock(&self.items).len())
    }

    fn is_true(self: &Arc<Self>) -> bool {
        !lock(&self.items).is_empty()
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (args, kwargs) = split_args(args);
        if matches!(method, "get" | "pop" | "setdefault")
            && let Some(key) = args.first()
        {
            check_hashable(key)?;
        }
        match method {
            "update" => {
                arity(method, args, 0, 1)?;
                if let Some(other) = args.first() {
                    self.update_from(other)?;
                }
                if let Some(kw) = kwargs {
                    let mut items = lock(&self.items);
                    for key in kw.args() {
                        let v: Value = kw.get(key)?;
                        items.insert(Value::from(key), v);
                    }
                }
                Ok(Value::from(()))
            }
            "get" => {
                arity(method, args, 1, 2)?;
                let items = lock(&self.items);
                Ok(items
                    .get(&args[0])
                    .cloned()
                    .unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::from(()))))
            }
            "pop" => {
                arity(method, args, 1, 2)?;
                let mut items = lock(&self.items);
                match items.shift_remove(&args[0]) {
                    Some(v) => Ok(v),
                    None => args
                        .get(1)
                        .cloned()
                        .ok_or_else(|| invalid(format!("key {} not in dict", py_repr(&args[0])))),
                }
            }
            "setdefault" => {
                arity(method, args, 1, 2)?;
                let mut items = lock(&self.items);
                let default = args.get(1).cloned().unwrap_or(Value::from(()));
                Ok(items.entry(args[0].clone()).or_insert(default).clone())
            }
            "keys" => {
                arity(method, args, 0, 0)?;
                Ok(List::new_value(lock(&self.items).keys().cloned().collect()))
            }
            "values" => {
                arity(method, args, 0, 0)?;
                Ok(List::new_value(
                    lock(&self.items).values().cloned().collect(),
                ))
            }
            "items" => {
                arity(method, args, 0, 0)?;
                Ok(List::new_value(
                    self.snapshot()
                        .into_iter()
                        .map(|(k, v)| Value::from(vec![k, v]))
                        .collect(),
                ))
            }
            "clear" => {
                arity(method, args, 0, 0)?;
                lock(&self.items).clear();
                Ok(Value::from(()))
            }
            "copy" => {
                arity(method, args, 0, 0)?;
                Ok(Dict::new_value(self.snapshot()))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("dict has no method named '{method}'"),
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_py_map(&mut out, &self.snapshot());
        f.write_str(&out)
    }
}

/// Python's `repr()` of a value: strings quoted, `None`, `True`, containers recursively.
pub fn py_repr(value: &Value) -> String {
    let mut out = String::new();
    write_py_repr(&mut out, value);
    out
}

fn write_py_str(out: &mut String, s: &str) {
    // Python prefers single quotes and switches to double quotes only when that avoids escaping.
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

fn write_py_seq(out: &mut String, items: &[Value], open: char, close: char) {
    out.push(open);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_py_repr(out, item);
    }
    if open == '(' && items.len() == 1 {
        out.push(',');
    }
    out.push(close);
}

fn write_py_map(out: &mut String, pairs: &[(Value, Value)]) {
    out.push('{');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_py_repr(out, k);
        out.push_str(": ");
        write_py_repr(out, v);
    }
    out.push('}');
}

fn write_py_repr(out: &mut String, value: &Value) {
    if nested(|| write_py_repr_inner(out, value)).is_none() {
        out.push_str("...");
    }
}

fn write_py_repr_inner(out: &mut String, value: &Value) {
    if let Some(list) = value.downcast_object_ref::<List>() {
        return write_py_seq(out, &list.snapshot(), '[', ']');
    }
    if let Some(dict) = value.downcast_object_ref::<Dict>() {
        return write_py_map(out, &dict.snapshot());
    }
    if value.downcast_object_ref::<Set>().is_some() {
        let _ = write!(out, "{value}");
        return;
    }
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::String => write_py_str(out, value.as_str().unwrap_or_default()),
        ValueKind::Seq if value.is_tuple() => {
            let items: Vec<Value> = value.try_iter().map(|i| i.collect()).unwrap_or_default();
            write_py_seq(out, &items, '(', ')');
        }
        ValueKind::Seq | ValueKind::Iterable if !has_own_render(value) => {
            let items: Vec<Value> = value.try_iter().map(|i| i.collect()).unwrap_or_default();
            write_py_seq(out, &items, '[', ']');
        }
        ValueKind::Map if is_plain_map(value) => {
            let pairs = pairs_of(value).unwrap_or_default();
            write_py_map(out, &pairs);
        }
        _ => {
            let _ = write!(out, "{value}");
        }
    }
}

fn is_plain_map(value: &Value) -> bool {
    // Only minijinja's own maps print as dict literals; custom objects (relations, columns)
    // print through their own `render`.
    value
        .downcast_object_ref::<IndexMap<Value, Value>>()
        .is_some()
        || value
            .downcast_object_ref::<std::collections::BTreeMap<Value, Value>>()
            .is_some()
}

fn is_plain_seq(value: &Value) -> bool {
    value.downcast_object_ref::<Vec<Value>>().is_some()
}

fn has_own_render(value: &Value) -> bool {
    // weir's table, row and column objects are sequences that render themselves.
    !(is_plain_seq(value)
        || value
            .as_object()
            .is_some_and(|o| o.type_name().contains("minijinja")))
}

/// Whether `{{ value }}` should print Python's repr: minijinja's own containers (the result of
/// a filter, `split()`, a var) print like weir's `List`/`Dict` do, as Python would.
pub(crate) fn prints_as_python(value: &Value) -> bool {
    match value.kind() {
        ValueKind::Seq | ValueKind::Iterable => !has_own_render(value) || value.is_tuple(),
        ValueKind::Map => is_plain_map(value),
        _ => false,
    }
}

/// Turns a value coming from outside dbt's templates (a var, a Rust result) into one whose
/// lists and dicts can be mutated, recursively.
pub fn to_mutable(value: Value) -> Value {
    if value.downcast_object_ref::<List>().is_some()
        || value.downcast_object_ref::<Dict>().is_some()
    {
        return value;
    }
    match value.kind() {
        ValueKind::Seq if is_plain_seq(&value) => {
            let items = value
                .try_iter()
                .map(|i| i.map(to_mutable).collect())
                .unwrap_or_default();
            List::new_value(items)
        }
        ValueKind::Map if is_plain_map(&value) => {
            let pairs = pairs_of(&value).unwrap_or_default();
            Dict::new_value(pairs.into_iter().map(|(k, v)| (k, to_mutable(v))))
        }
        _ => value,
    }
}

/// A Python-like set (`set()`, `set(items)`): shared, mutable, insertion-ordered so that
/// rendered SQL is deterministic.
#[derive(Debug, Default)]
pub struct Set {
    items: Mutex<indexmap::IndexSet<Value>>,
}

impl Set {
    /// A new mutable set value holding the distinct `items`.
    pub fn new_value(items: impl IntoIterator<Item = Value>) -> Value {
        Value::from_object(Set {
            items: Mutex::new(items.into_iter().collect()),
        })
    }

    /// A copy of the current items.
    pub fn snapshot(&self) -> Vec<Value> {
        lock(&self.items).iter().cloned().collect()
    }
}

fn items_of(values: &[Value]) -> Result<Vec<Vec<Value>>, Error> {
    values
        .iter()
        .map(|v| v.try_iter().map(|i| i.collect()))
        .collect()
}

impl Object for Set {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Iterable
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.snapshot())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(lock(&self.items).len())
    }

    fn is_true(self: &Arc<Self>) -> bool {
        !lock(&self.items).is_empty()
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (args, _) = split_args(args);
        let others = || items_of(args);
        let mine = || self.snapshot();
        let contains_all = |a: &[Value], b: &[Value]| a.iter().all(|x| b.contains(x));
        match method {
            "add" => {
                arity(method, args, 1, 1)?;
                lock(&self.items).insert(args[0].clone());
                Ok(Value::from(()))
            }
            "update" => {
                let new = others()?;
                let mut items = lock(&self.items);
                for v in new.into_iter().flatten() {
                    items.insert(v);
                }
                Ok(Value::from(()))
            }
            "remove" | "discard" => {
                arity(method, args, 1, 1)?;
                let removed = lock(&self.items).shift_remove(&args[0]);
                if !removed && method == "remove" {
                    return Err(invalid(format!("{} not in set", py_repr(&args[0]))));
                }
                Ok(Value::from(()))
            }
            "pop" => {
                arity(method, args, 0, 0)?;
                lock(&self.items)
                    .shift_remove_index(0)
                    .ok_or_else(|| invalid("pop from an empty set"))
            }
            "clear" => {
                lock(&self.items).clear();
                Ok(Value::from(()))
            }
            "copy" => Ok(Set::new_value(mine())),
            "union" => Ok(Set::new_value(
                mine().into_iter().chain(others()?.into_iter().flatten()),
            )),
            "intersection" => {
                let others = others()?;
                Ok(Set::new_value(
                    mine()
                        .into_iter()
                        .filter(|x| others.iter().all(|o| o.contains(x))),
                ))
            }
            "difference" => {
                let others = others()?;
                Ok(Set::new_value(
                    mine()
                        .into_iter()
                        .filter(|x| !others.iter().any(|o| o.contains(x))),
                ))
            }
            "issubset" => {
                arity(method, args, 1, 1)?;
                Ok(Value::from(contains_all(&mine(), &others()?[0])))
            }
            "issuperset" => {
                arity(method, args, 1, 1)?;
                Ok(Value::from(contains_all(&others()?[0], &mine())))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("set has no method named '{method}'"),
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items = self.snapshot();
        if items.is_empty() {
            return f.write_str("set()");
        }
        let mut out = String::new();
        write_py_seq(&mut out, &items, '{', '}');
        f.write_str(&out)
    }
}
