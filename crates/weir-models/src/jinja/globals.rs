//! dbt's context globals that need no node or warehouse: `zip`, `set`, `list`, `dict`,
//! `tojson`/`fromjson`, `modules` (`datetime`, `re`, `itertools`), `exceptions`, `api`, and the
//! method fallback for values minijinja built itself.

use std::sync::Arc;

use minijinja::value::{Enumerator, Kwargs, Object, Rest, Value, ValueKind, ValueOrKwargs};
use minijinja::{Environment, Error, ErrorKind, State};

use super::adapter::{Column, Relation};
use super::value::{Dict, List, Set, check_hashable, py_repr, split_args, to_mutable};

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// `__weir_dict(k1, v1, k2, v2, ...)`, what a rewritten `{k1: v1, k2: v2}` calls.
pub fn dict_from_pairs(items: Rest<Value>) -> Result<Value, Error> {
    if !items.0.len().is_multiple_of(2) {
        return Err(invalid("dict literal has a key without a value"));
    }
    let mut pairs = Vec::with_capacity(items.0.len() / 2);
    for kv in items.0.chunks(2) {
        check_hashable(&kv[0])?;
        pairs.push((kv[0].clone(), kv[1].clone()));
    }
    Ok(Dict::new_value(pairs))
}

/// Mutating methods on values minijinja built itself (the result of `|list`, `+`, a filter)
/// cannot work; say so instead of "unknown method". Everything else goes to pycompat, which
/// gives Python's `str`, `dict` and `list` read-only methods.
pub fn unknown_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    const MUTATING: &[&str] = &[
        "append",
        "extend",
        "pop",
        "insert",
        "remove",
        "clear",
        "sort",
        "reverse",
        "update",
        "setdefault",
    ];
    if matches!(
        value.kind(),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable
    ) && MUTATING.contains(&method)
    {
        // Mutate a copy would silently lose the change; a fresh mutable copy is not the same
        // object either. Fail loudly with what to write instead.
        return Err(invalid(format!(
            "cannot call {method}() on {}: this {} was not built from a literal (e.g. it came from a filter or `+`); build it with a literal first, e.g. {{% set x = [] %}}{{% do x.extend(...) %}}",
            py_repr(value),
            value.kind()
        )));
    }
    if value.kind() == ValueKind::Map && method == "copy" {
        return Ok(to_mutable(value.clone()));
    }
    // `'a,b'.split(',')` and `d.items()` are new lists in Python, free to mutate.
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args).map(to_mutable)
}

fn zip(iterables: Rest<Value>) -> Result<Value, Error> {
    let mut columns = Vec::new();
    for it in iterables.0 {
        columns.push(it.try_iter()?.collect::<Vec<_>>());
    }
    let len = columns.iter().map(Vec::len).min().unwrap_or(0);
    Ok(List::new_value(
        (0..len)
            .map(|i| Value::from(columns.iter().map(|c| c[i].clone()).collect::<Vec<_>>()))
            .collect(),
    ))
}

fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let mut json = serde_json::to_value(&value)
        .map_err(|e| invalid(format!("cannot serialise {} to json: {e}", py_repr(&value))))?;
    if sort_keys.unwrap_or(false) {
        json = sort_json(json);
    }
    // Python's json.dumps separators, which dbt uses: ", " and ": ".
    Ok(Value::from(python_json(&json)))
}

fn sort_json(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let mut pairs: Vec<_> = map.into_iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(pairs.into_iter().map(|(k, v)| (k, sort_json(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sort_json).collect())
        }
        other => other,
    }
}

fn python_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(python_json).collect();
            format!("[{}]", inner.join(", "))
        }
        serde_json::Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", serde_json::Value::from(k.clone()), python_json(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        other => other.to_string(),
    }
}

fn fromjson(text: String, default: Option<Value>) -> Result<Value, Error> {
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(json) => Ok(to_mutable(Value::from(minijinja::value::Serde(&json)))),
        Err(e) => default.ok_or_else(|| invalid(format!("fromjson: invalid json {text:?}: {e}"))),
    }
}

/// A read-only namespace object (`modules`, `exceptions`, `api`, ...).
#[derive(Debug)]
struct Module {
    name: &'static str,
}

pub(crate) fn module(name: &'static str) -> Value {
    Value::from_object(Module { name })
}

impl Object for Module {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        Some(match (self.name, key) {
            ("modules", "re") => module("re"),
            ("modules", "datetime") => module("datetime"),
            ("modules", "itertools") => module("itertools"),
            ("datetime", "datetime") => module("datetime.datetime"),
            ("datetime", "date") => module("datetime.date"),
            ("api", "Relation") => module("api.Relation"),
            ("api", "Column") => module("api.Column"),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (pos, kwargs) = split_args(args);
        let s = |i: usize| -> Result<String, Error> {
            pos.get(i).map(|v| v.to_string()).ok_or_else(|| {
                invalid(format!(
                    "{}.{method}() is missing argument {}",
                    self.name,
                    i + 1
                ))
            })
        };
        match (self.name, method) {
            ("exceptions", "raise_compiler_error") => Err(invalid(s(0)?)),
            ("exceptions", "raise_not_implemented") => {
                Err(invalid(format!("not implemented: {}", s(0)?)))
            }
            ("re", "sub") => {
                let re = regex(&s(0)?)?;
                let repl = python_replacement(&s(1)?);
                Ok(Value::from(
                    re.replace_all(&s(2)?, repl.as_str()).into_owned(),
                ))
            }
            ("re", "match") | ("re", "search") | ("re", "fullmatch") => {
                let pattern = match method {
                    "match" => format!("^(?:{})", s(0)?),
                    "fullmatch" => format!("^(?:{})$", s(0)?),
                    _ => s(0)?,
                };
                let re = regex(&pattern)?;
                let text = s(1)?;
                Ok(match re.captures(&text) {
                    Some(caps) => Value::from_object(Match(
                        (0..caps.len())
                            .map(|i| caps.get(i).map(|m| m.as_str().to_string()))
                            .collect(),
                    )),
                    None => Value::from(()),
                })
            }
            ("re", "findall") => {
                let re = regex(&s(0)?)?;
                let text = s(1)?;
                Ok(List::new_value(
                    re.captures_iter(&text)
                        .map(|c| {
                            let m = if c.len() > 1 { c.get(1) } else { c.get(0) };
                            Value::from(m.map(|m| m.as_str()).unwrap_or(""))
                        })
                        .collect(),
                ))
            }
            ("re", "split") => {
                let re = regex(&s(0)?)?;
                Ok(List::new_value(re.split(&s(1)?).map(Value::from).collect()))
            }
            ("re", "escape") => Ok(Value::from(::regex::escape(&s(0)?))),
            ("itertools", "chain") => {
                let mut out = Vec::new();
                for it in pos {
                    out.extend(it.try_iter()?);
                }
                Ok(List::new_value(out))
            }
            ("itertools", "product") => {
                let mut acc: Vec<Vec<Value>> = vec![Vec::new()];
                for it in pos {
                    let items: Vec<Value> = it.try_iter()?.collect();
                    acc = acc
                        .into_iter()
                        .flat_map(|prefix| {
                            items.iter().map(move |x| {
                                let mut p = prefix.clone();
                                p.push(x.clone());
                                p
                            })
                        })
                        .collect();
                }
                Ok(List::new_value(acc.into_iter().map(Value::from).collect()))
            }
            ("datetime.datetime", "now") | ("datetime.datetime", "utcnow") => {
                Ok(Value::from_object(DateTime::now()))
            }
            ("api.Relation", "create") => {
                let get = |i: usize, name: &str| -> Option<String> {
                    pos.get(i)
                        .cloned()
                        .or_else(|| kwargs.as_ref().and_then(|k| k.peek::<Value>(name).ok()))
                        .filter(|v| !v.is_none() && !v.is_undefined())
                        .map(|v| v.to_string())
                };
                let mut rel = Relation::new(
                    get(0, "database").as_deref(),
                    get(1, "schema").as_deref(),
                    "",
                );
                rel.identifier = get(2, "identifier");
                rel.kind = get(3, "type");
                Ok(rel.into_value())
            }
            ("api.Relation", "add_ephemeral_prefix") => {
                Ok(Value::from(format!("__dbt__cte__{}", s(0)?)))
            }
            ("api.Column", "create") => Ok(Value::from_object(Column::new(&s(0)?, &s(1)?))),
            // dbt's portable type labels, as its base Column translates them.
            ("api.Column", "translate_type") => {
                let dtype = s(0)?;
                Ok(Value::from(match dtype.to_uppercase().as_str() {
                    "STRING" => "TEXT".to_string(),
                    "INTEGER" => "INT".to_string(),
                    "TIMESTAMP" | "FLOAT" | "BOOLEAN" => dtype.to_uppercase(),
                    _ => dtype,
                }))
            }
            ("api.Column", "numeric_type") => {
                let dtype = s(0)?;
                match (pos.get(1), pos.get(2)) {
                    (Some(p), Some(sc)) if !p.is_none() && !sc.is_none() => {
                        Ok(Value::from(format!("{dtype}({p},{sc})")))
                    }
                    _ => Ok(Value::from(dtype)),
                }
            }
            ("api.Column", "string_type") => {
                Ok(Value::from(format!("character varying({})", s(0)?)))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("{} has no function named '{method}'", self.name),
            )),
        }
    }
}

fn regex(pattern: &str) -> Result<::regex::Regex, Error> {
    ::regex::Regex::new(pattern)
        .map_err(|e| invalid(format!("invalid regular expression {pattern:?}: {e}")))
}

/// Python's `\1` group references become the regex crate's `${1}`.
fn python_replacement(repl: &str) -> String {
    let mut out = String::new();
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                let mut n = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{n}}}"));
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

/// A `re` match: `.group(n)`, `.groups()`, truthy.
#[derive(Debug)]
struct Match(Vec<Option<String>>);

impl Object for Match {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let opt = |s: &Option<String>| s.clone().map(Value::from).unwrap_or(Value::from(()));
        match method {
            "group" => {
                let i = args.first().and_then(Value::as_i64).unwrap_or(0) as usize;
                self.0
                    .get(i)
                    .map(opt)
                    .ok_or_else(|| invalid(format!("no such group: {i}")))
            }
            "groups" => Ok(Value::from(
                self.0.iter().skip(1).map(opt).collect::<Vec<_>>(),
            )),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("match has no method named '{method}'"),
            )),
        }
    }
}

/// `modules.datetime.datetime.now()`, in UTC.
#[derive(Debug)]
struct DateTime {
    secs: i64,
}

/// A datetime value (`run_started_at`) at `secs` since the epoch, or now.
pub(crate) fn datetime_value(secs: Option<i64>) -> Value {
    Value::from_object(
        secs.map(|secs| DateTime { secs })
            .unwrap_or_else(DateTime::now),
    )
}

impl DateTime {
    fn now() -> DateTime {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        DateTime { secs }
    }

    fn parts(&self) -> (i64, i64, i64, i64, i64, i64) {
        // Howard Hinnant's civil_from_days.
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
    }

    fn strftime(&self, fmt: &str) -> String {
        let (y, m, d, hh, mm, ss) = self.parts();
        let mut out = String::new();
        let mut chars = fmt.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('Y') => out.push_str(&format!("{y:04}")),
                Some('m') => out.push_str(&format!("{m:02}")),
                Some('d') => out.push_str(&format!("{d:02}")),
                Some('H') => out.push_str(&format!("{hh:02}")),
                Some('M') => out.push_str(&format!("{mm:02}")),
                Some('S') => out.push_str(&format!("{ss:02}")),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        out
    }
}

impl Object for DateTime {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (y, m, d, hh, mm, ss) = self.parts();
        Some(Value::from(match key.as_str()? {
            "year" => y,
            "month" => m,
            "day" => d,
            "hour" => hh,
            "minute" => mm,
            "second" => ss,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => Ok(Value::from(
                self.strftime(&args.first().map(|v| v.to_string()).unwrap_or_default()),
            )),
            "isoformat" => Ok(Value::from(self.strftime("%Y-%m-%dT%H:%M:%S"))),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("datetime has no method named '{method}'"),
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.strftime("%Y-%m-%d %H:%M:%S"))
    }
}

/// Registers the globals on an environment.
pub fn register(env: &mut Environment<'static>) {
    env.add_function("zip", zip);
    env.add_function("set", |items: Option<Value>| -> Result<Value, Error> {
        Ok(Set::new_value(match items {
            Some(v) if !v.is_none() => v.try_iter()?.collect(),
            _ => Vec::new(),
        }))
    });
    env.add_function("list", |items: Option<Value>| -> Result<Value, Error> {
        Ok(List::new_value(match items {
            Some(v) if !v.is_none() => v.try_iter()?.collect(),
            _ => Vec::new(),
        }))
    });
    env.add_function(
        "dict",
        |args: Rest<ValueOrKwargs>| -> Result<Value, Error> {
            let args: Vec<Value> = args.0.into_iter().map(ValueOrKwargs::into_value).collect();
            let (pos, kwargs) = split_args(&args);
            let mut pairs: Vec<(Value, Value)> = Vec::new();
            if let Some(first) = pos.first()
                && let Some(d) = to_mutable(first.clone()).downcast_object_ref::<Dict>()
            {
                pairs.extend(d.snapshot());
            }
            if let Some(kw) = kwargs {
                for key in kw.args() {
                    pairs.push((Value::from(key), kw.peek::<Value>(key)?));
                }
            }
            Ok(Dict::new_value(pairs))
        },
    );
    env.add_filter("list", |v: Value| -> Result<Value, Error> {
        Ok(List::new_value(v.try_iter()?.collect()))
    });
    env.add_function("tojson", tojson);
    env.add_filter("tojson", tojson);
    env.add_function("fromjson", fromjson);
    env.add_global("modules", module("modules"));
    env.add_global("exceptions", module("exceptions"));
    env.add_global("api", module("api"));
    env.add_global(
        "local_md5",
        Value::from_function(|s: String| {
            use md5::Digest;
            let digest = md5::Md5::digest(s.as_bytes());
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        }),
    );
}
