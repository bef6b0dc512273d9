//! The warehouse seam (`Adapter`) and the values dbt templates see from it: relations,
//! columns and agate-like result tables.
//!
//! Templates reach the warehouse only through the [`Adapter`] trait the caller passes to the
//! engine, so tests use a fake and the engine itself never opens a connection.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};

use super::value::{Dict, List, split_args};

/// What went wrong in the warehouse, as the adapter words it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AdapterError(pub String);

/// The warehouse, as dbt's templates reach it.
pub trait Adapter: Send + Sync {
    /// The adapter type, as dbt names it: `duckdb`, `postgres`.
    fn dialect(&self) -> &str;
    /// Runs `sql`; returns its rows when `fetch` (an empty table otherwise).
    fn execute(&self, sql: &str, fetch: bool) -> Result<Table, AdapterError>;
    /// The columns of a relation, in order (empty when it does not exist, as dbt does).
    fn get_columns_in_relation(&self, relation: &Relation) -> Result<Vec<Column>, AdapterError>;
    /// The relation if it exists in the warehouse.
    fn get_relation(
        &self,
        database: Option<&str>,
        schema: &str,
        identifier: &str,
    ) -> Result<Option<Relation>, AdapterError>;
    /// The quote character for identifiers.
    fn quote_char(&self) -> char {
        '"'
    }
}

/// A database relation (`"db"."schema"."table"`), as dbt's `api.Relation`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Relation {
    pub database: Option<String>,
    pub schema: Option<String>,
    pub identifier: Option<String>,
    /// `table`, `view`, `cte`, ... when known.
    pub kind: Option<String>,
    /// Which parts `render()` prints (`include(database=False)` turns one off).
    pub include: [bool; 3],
    /// Which parts are quoted.
    pub quote: [bool; 3],
    pub quote_char: char,
}

impl Relation {
    /// A relation with all three parts printed and quoted.
    pub fn new(database: Option<&str>, schema: Option<&str>, identifier: &str) -> Relation {
        Relation {
            database: database.map(str::to_string),
            schema: schema.map(str::to_string),
            identifier: Some(identifier.to_string()),
            kind: None,
            include: [true; 3],
            quote: [true; 3],
            quote_char: '"',
        }
    }

    /// The schema a relation without one lives in, as the warehouse and the relation cache
    /// look it up (DuckDB's `main`).
    pub fn schema_or_default(&self) -> &str {
        self.schema.as_deref().unwrap_or("main")
    }

    /// The dotted name dbt prints for this relation.
    pub fn render(&self) -> String {
        let parts = [&self.database, &self.schema, &self.identifier];
        let mut out = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            if let (true, Some(p)) = (self.include[i], part) {
                if self.quote[i] {
                    out.push(quote_identifier(p, self.quote_char));
                } else {
                    out.push(p.clone());
                }
            }
        }
        out.join(".")
    }

    /// The value templates see.
    pub fn into_value(self) -> Value {
        Value::from_object(self)
    }
}

/// Quotes an identifier, doubling the quote character inside it.
pub fn quote_identifier(name: &str, quote_char: char) -> String {
    let q = quote_char.to_string();
    format!("{q}{}{q}", name.replace(&q, &format!("{q}{q}")))
}

fn opt(v: &Option<String>) -> Value {
    v.as_deref().map(Value::from).unwrap_or(Value::from(()))
}

fn kwarg_bool(kwargs: &Option<minijinja::value::Kwargs>, key: &str) -> Result<Option<bool>, Error> {
    match kwargs {
        Some(kw) if kw.has(key) => Ok(Some(kw.get::<bool>(key)?)),
        _ => Ok(None),
    }
}

impl Object for Relation {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        // dbt_utils checks `obj is mapping` to tell relations from strings.
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "database" => opt(&self.database),
            "schema" => opt(&self.schema),
            "identifier" | "name" | "table" => opt(&self.identifier),
            "type" => opt(&self.kind),
            "is_table" => Value::from(self.kind.as_deref() == Some("table")),
            "is_view" => Value::from(self.kind.as_deref() == Some("view")),
            "is_cte" => Value::from(self.kind.as_deref() == Some("cte")),
            "metadata" => Dict::new_value([(Value::from("type"), Value::from("BaseRelation"))]),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["database", "schema", "identifier", "type", "metadata"])
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (pos, kwargs) = split_args(args);
        match method {
            "render" => Ok(Value::from(Relation::render(self))),
            "get" => {
                let key = pos.first().cloned().unwrap_or_default();
                Ok(self
                    .get_value(&key)
                    .unwrap_or_else(|| pos.get(1).cloned().unwrap_or(Value::from(()))))
            }
            "include" | "quote" => {
                let mut rel = (**self).clone();
                for (i, part) in ["database", "schema", "identifier"].iter().enumerate() {
                    if let Some(on) = kwarg_bool(&kwargs, part)? {
                        if method == "include" {
                            rel.include[i] = on;
                        } else {
                            rel.quote[i] = on;
                        }
                    }
                }
                Ok(rel.into_value())
            }
            "incorporate" => {
                let mut rel = (**self).clone();
                if let Some(kw) = &kwargs
                    && kw.has("type")
                {
                    rel.kind = kw.get::<Option<String>>("type")?;
                }
                Ok(rel.into_value())
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("relation has no method named '{method}'"),
            )),
        }
    }

    fn custom_cmp(
        self: &Arc<Self>,
        other: &minijinja::value::DynObject,
    ) -> Option<std::cmp::Ordering> {
        let other = other.downcast_ref::<Relation>()?;
        Some(Relation::render(self).cmp(&other.render()))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Relation::render(self))
    }
}

/// A column of a relation, as dbt's `api.Column`.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// The warehouse's type name (`integer`, `character varying(10)`, `VARCHAR`).
    pub data_type: String,
    pub char_size: Option<i64>,
    pub numeric_precision: Option<i64>,
    pub numeric_scale: Option<i64>,
    pub quote_char: char,
}

impl Column {
    pub fn new(name: &str, data_type: &str) -> Column {
        Column {
            name: name.to_string(),
            data_type: data_type.to_string(),
            char_size: None,
            numeric_precision: None,
            numeric_scale: None,
            quote_char: '"',
        }
    }

    fn base_type(&self) -> String {
        let lower = self.data_type.to_lowercase();
        lower.split('(').next().unwrap_or("").trim().to_string()
    }

    pub fn is_string(&self) -> bool {
        matches!(
            self.base_type().as_str(),
            "text" | "varchar" | "character varying" | "character" | "char" | "string" | "bpchar"
        )
    }

    pub fn is_integer(&self) -> bool {
        matches!(
            self.base_type().as_str(),
            "integer"
                | "int"
                | "int4"
                | "int8"
                | "int2"
                | "bigint"
                | "smallint"
                | "tinyint"
                | "hugeint"
                | "serial"
                | "bigserial"
                | "smallserial"
                | "ubigint"
                | "uinteger"
        )
    }

    pub fn is_float(&self) -> bool {
        matches!(
            self.base_type().as_str(),
            "real" | "float" | "float4" | "float8" | "double" | "double precision"
        )
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self.base_type().as_str(), "numeric" | "decimal")
    }

    /// The data type as dbt prints it (`character varying(10)`, `numeric(10,2)`).
    pub fn rendered_type(&self) -> String {
        let sized = self.data_type.contains('(');
        if self.is_string()
            && !sized
            && let Some(size) = self.char_size
        {
            return format!("{}({size})", self.data_type);
        }
        if self.is_numeric()
            && !sized
            && let (Some(p), Some(s)) = (self.numeric_precision, self.numeric_scale)
        {
            return format!("{}({p},{s})", self.data_type);
        }
        self.data_type.clone()
    }
}

impl Object for Column {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "name" | "column" => Value::from(self.name.clone()),
            "quoted" => Value::from(quote_identifier(&self.name, self.quote_char)),
            "data_type" => Value::from(self.rendered_type()),
            "dtype" => Value::from(self.data_type.clone()),
            "char_size" => self.char_size.map(Value::from).unwrap_or(Value::from(())),
            "numeric_precision" => self
                .numeric_precision
                .map(Value::from)
                .unwrap_or(Value::from(())),
            "numeric_scale" => self
                .numeric_scale
                .map(Value::from)
                .unwrap_or(Value::from(())),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["name", "data_type", "dtype", "quoted"])
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        Ok(match method {
            "is_string" => Value::from(self.is_string()),
            "is_number" => Value::from(self.is_integer() || self.is_float() || self.is_numeric()),
            "is_numeric" => Value::from(self.is_numeric()),
            "is_integer" => Value::from(self.is_integer()),
            "is_float" => Value::from(self.is_float()),
            "string_size" => {
                if !self.is_string() {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("called string_size() on non-string field '{}'", self.name),
                    ));
                }
                // dbt answers 256 for a string column without a declared size.
                Value::from(self.char_size.unwrap_or(256))
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::UnknownMethod,
                    format!("column has no method named '{method}'"),
                ));
            }
        })
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Column {} ({})>", self.name, self.data_type)
    }
}

/// A query result, as the agate table dbt hands to templates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub column_names: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn new(column_names: &[&str], rows: Vec<Vec<Value>>) -> Table {
        Table {
            column_names: column_names.iter().map(|s| s.to_string()).collect(),
            rows,
        }
    }

    /// The rows as plain lists (what `load_result(...)['data']` holds).
    pub fn data_value(&self) -> Value {
        Value::from(
            self.rows
                .iter()
                .map(|r| Value::from(r.clone()))
                .collect::<Vec<_>>(),
        )
    }
}

#[derive(Debug)]
struct TableColumns(Arc<Table>);

#[derive(Debug)]
struct TableColumn {
    table: Arc<Table>,
    index: usize,
}

#[derive(Debug)]
struct TableRow {
    table: Arc<Table>,
    index: usize,
}

/// The value templates see for a result table.
pub fn table_value(table: Table) -> Value {
    Value::from_object(TableObject(Arc::new(table)))
}

#[derive(Debug)]
struct TableObject(Arc<Table>);

fn index_of(key: &Value, len: usize) -> Option<usize> {
    let i = key.as_i64()?;
    if i < 0 {
        len.checked_sub(i.unsigned_abs() as usize)
    } else {
        ((i as usize) < len).then_some(i as usize)
    }
}

fn rows_value(table: &Arc<Table>) -> Value {
    List::new_value(
        (0..table.rows.len())
            .map(|index| {
                Value::from_object(TableRow {
                    table: table.clone(),
                    index,
                })
            })
            .collect(),
    )
}

impl Object for TableObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        // Iterating a table yields its rows, as agate does; attributes still resolve.
        ObjectRepr::Iterable
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(i) = index_of(key, self.0.rows.len()) {
            return Some(Value::from_object(TableRow {
                table: self.0.clone(),
                index: i,
            }));
        }
        Some(match key.as_str()? {
            "columns" => Value::from_object(TableColumns(self.0.clone())),
            "rows" => rows_value(&self.0),
            "column_names" => Value::from(
                self.0
                    .column_names
                    .iter()
                    .map(|s| Value::from(s.clone()))
                    .collect::<Vec<_>>(),
            ),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match rows_value(&self.0).try_iter() {
            Ok(iter) => Enumerator::Values(iter.collect()),
            Err(_) => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.rows.len())
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<agate.Table {} rows>", self.0.rows.len())
    }
}

impl Object for TableColumns {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Iterable
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let index = match key.as_str() {
            Some(name) => self.0.column_names.iter().position(|c| c == name)?,
            None => index_of(key, self.0.column_names.len())?,
        };
        Some(Value::from_object(TableColumn {
            table: self.0.clone(),
            index,
        }))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            (0..self.0.column_names.len())
                .map(|index| {
                    Value::from_object(TableColumn {
                        table: self.0.clone(),
                        index,
                    })
                })
                .collect(),
        )
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.column_names.len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        // agate's columns are a MappedSequence: name -> column, in order.
        let names = || self.0.column_names.iter().map(|n| Value::from(n.clone()));
        let columns = || match self.enumerate() {
            Enumerator::Values(v) => v,
            _ => Vec::new(),
        };
        match method {
            "keys" => Ok(List::new_value(names().collect())),
            "values" => Ok(List::new_value(columns())),
            "items" => Ok(List::new_value(
                names()
                    .zip(columns())
                    .map(|(n, c)| Value::from(vec![n, c]))
                    .collect(),
            )),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("table columns have no method named '{method}'"),
            )),
        }
    }
}

impl Object for TableColumn {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "name" => self
                .table
                .column_names
                .get(self.index)
                .map(|s| Value::from(s.clone())),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "values" => Ok(Value::from(
                self.table
                    .rows
                    .iter()
                    .map(|r| r.get(self.index).cloned().unwrap_or(Value::from(())))
                    .collect::<Vec<_>>(),
            )),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("table column has no method named '{method}'"),
            )),
        }
    }
}

impl Object for TableRow {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Iterable
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let row = self.table.rows.get(self.index)?;
        let i = match key.as_str() {
            Some(name) => self.table.column_names.iter().position(|c| c == name)?,
            None => index_of(key, row.len())?,
        };
        row.get(i).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.table.rows.get(self.index).cloned().unwrap_or_default())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        self.table.rows.get(self.index).map(Vec::len)
    }
}
