//! Static scans of SQL and Jinja text before any rendering, as dbt's static parser does: the
//! `ref()`/`source()` calls with literal arguments (the parse-time dependency list), and the
//! `{% macro %}`, `{% test %}`, `{% materialization %}`, `{% docs %}` and `{% snapshot %}` blocks
//! of a file. The compiler replaces the dependency list by what rendering really calls.

use std::sync::LazyLock;

use regex::Regex;

use super::node::{RefCall, SourceCall};

/// What a static scan of one SQL file found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calls {
    pub refs: Vec<RefCall>,
    pub sources: Vec<SourceCall>,
}

static CALL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[^\w.])(ref|source)\s*\(").expect("valid regex"));
static JINJA: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}").expect("valid regex"));

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Str(String),
    Ident(String),
    Number(String),
    Punct(char),
}

/// Reads the argument list after `ref(`; `None` when an argument is not a literal (a variable,
/// a concatenation), which dbt's static parser also leaves to rendering.
/// Positional string arguments and `key=value` keyword arguments of a call.
type Arguments = (Vec<String>, Vec<(String, String)>);

fn arguments(text: &str) -> Option<Arguments> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {}
            '\'' | '"' => {
                let mut s = String::new();
                let mut closed = false;
                while let Some((_, d)) = chars.next() {
                    if d == '\\' {
                        if let Some((_, e)) = chars.next() {
                            s.push(e);
                        }
                    } else if d == c {
                        closed = true;
                        break;
                    } else {
                        s.push(d);
                    }
                }
                if !closed {
                    return None;
                }
                tokens.push(Token::Str(s));
            }
            ')' => {
                tokens.push(Token::Punct(')'));
                break;
            }
            ',' | '=' => tokens.push(Token::Punct(c)),
            c if c.is_ascii_digit() || c == '-' => {
                let mut s = c.to_string();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_ascii_digit() || d == '.' {
                        s.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Number(s));
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut s = c.to_string();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' {
                        s.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Ident(s));
            }
            _ => return None,
        }
    }
    if tokens.last() != Some(&Token::Punct(')')) {
        return None;
    }
    tokens.pop();
    let mut positional = Vec::new();
    let mut keywords = Vec::new();
    for arg in tokens.split(|t| *t == Token::Punct(',')) {
        match arg {
            [] => {}
            [Token::Str(s)] => positional.push(s.clone()),
            [
                Token::Ident(k),
                Token::Punct('='),
                Token::Str(v) | Token::Number(v),
            ] => keywords.push((k.clone(), v.clone())),
            _ => return None,
        }
    }
    Some((positional, keywords))
}

/// Finds the literal `ref()` and `source()` calls inside the Jinja of `sql`, in order, once each.
pub fn scan_calls(sql: &str) -> Calls {
    let mut calls = Calls::default();
    for block in JINJA.find_iter(sql) {
        let text = block.as_str();
        if text.starts_with("{#") {
            continue;
        }
        for found in CALL.captures_iter(text) {
            let (Some(whole), Some(kind)) = (found.get(0), found.get(1)) else {
                continue;
            };
            let Some((positional, keywords)) = arguments(&text[whole.end()..]) else {
                continue;
            };
            if kind.as_str() == "ref" {
                let version = keywords
                    .iter()
                    .find(|(k, _)| k == "v" || k == "version")
                    .map(|(_, v)| v.clone());
                let package = keywords
                    .iter()
                    .find(|(k, _)| k == "package")
                    .map(|(_, v)| v.clone());
                let call = match positional.as_slice() {
                    [name] => RefCall {
                        package,
                        name: name.clone(),
                        version,
                    },
                    [pkg, name] => RefCall {
                        package: Some(pkg.clone()),
                        name: name.clone(),
                        version,
                    },
                    _ => continue,
                };
                if !calls.refs.contains(&call) {
                    calls.refs.push(call);
                }
            } else if let [source, table] = positional.as_slice() {
                let call = SourceCall {
                    source: source.clone(),
                    table: table.clone(),
                };
                if !calls.sources.contains(&call) {
                    calls.sources.push(call);
                }
            }
        }
    }
    calls
}

/// Parses the text of a YAML reference such as `ref('customers')` or `source('raw', 'orders')`
/// (as written in `relationships: to:`, exposures' `depends_on`, unit tests' `input`).
pub fn scan_reference(text: &str) -> Calls {
    scan_calls(&format!("{{{{ {text} }}}}"))
}

/// Kinds of top-level blocks found in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    Macro,
    Test,
    Materialization,
    Docs,
    Snapshot,
}

/// One `{% kind name ... %}...{% endkind %}` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub kind: BlockKind,
    /// The name as dbt registers it: `test_<name>` for tests, `materialization_<name>_<adapter>`.
    pub name: String,
    pub arguments: Vec<String>,
    pub line: usize,
    /// The whole block, tags included.
    pub full: String,
    /// The text between the opening and closing tags.
    pub body: String,
}

static OPEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\{%-?\s*(macro|test|materialization|docs|snapshot)\s+([A-Za-z_][\w]*)([^%]*?)-?%\}",
    )
    .expect("valid regex")
});

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

fn argument_names(rest: &str) -> Vec<String> {
    let inner = rest.trim();
    let Some(inner) = inner.strip_prefix('(') else {
        return Vec::new();
    };
    let inner = inner.strip_suffix(')').unwrap_or(inner);
    let mut names = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    for c in inner.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                names.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    names.push(current);
    names
        .iter()
        .filter_map(|a| {
            let name = a.split('=').next().unwrap_or("").trim();
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

/// Finds the top-level blocks of a file. An unclosed block is an error naming its line.
pub fn scan_blocks(text: &str) -> Result<Vec<Block>, (usize, String)> {
    let mut blocks = Vec::new();
    let mut position = 0;
    while let Some(open) = OPEN.captures_at(text, position) {
        let (Some(whole), Some(kind), Some(name)) = (open.get(0), open.get(1), open.get(2)) else {
            break;
        };
        let rest = open.get(3).map(|m| m.as_str()).unwrap_or("");
        let kind_text = kind.as_str();
        let line = line_of(text, whole.start());
        let end_tag =
            Regex::new(&format!(r"\{{%-?\s*end{kind_text}\s*-?%\}}")).expect("valid regex");
        let Some(end) = end_tag.find_at(text, whole.end()) else {
            return Err((
                line,
                format!(
                    "'{{% {kind_text} {} %}}' is never closed by '{{% end{kind_text} %}}'",
                    name.as_str()
                ),
            ));
        };
        let (kind, block_name) = match kind_text {
            "macro" => (BlockKind::Macro, name.as_str().to_string()),
            "test" => (BlockKind::Test, format!("test_{}", name.as_str())),
            "docs" => (BlockKind::Docs, name.as_str().to_string()),
            "snapshot" => (BlockKind::Snapshot, name.as_str().to_string()),
            _ => {
                let adapter = materialization_adapter(rest);
                (
                    BlockKind::Materialization,
                    format!("materialization_{}_{adapter}", name.as_str()),
                )
            }
        };
        blocks.push(Block {
            kind,
            name: block_name,
            arguments: if kind == BlockKind::Materialization {
                Vec::new()
            } else {
                argument_names(rest)
            },
            line,
            full: text[whole.start()..end.end()].to_string(),
            body: text[whole.end()..end.start()].to_string(),
        });
        position = end.end();
    }
    Ok(blocks)
}

fn materialization_adapter(rest: &str) -> String {
    static ADAPTER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"adapter\s*=\s*['"]([\w]+)['"]"#).expect("valid regex"));
    if let Some(found) = ADAPTER.captures(rest).and_then(|c| c.get(1)) {
        return found.as_str().to_string();
    }
    "default".to_string()
}

/// The in-file `{{ config(...) }}` as far as it is literal: every keyword argument whose value
/// is a string, number, boolean, `none`, or a list/dict of those. Non-literal arguments are
/// left out (the compiler renders the real call and replaces this layer); `complete` says
/// whether anything was left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StaticConfig {
    pub config: serde_json::Map<String, serde_json::Value>,
    pub complete: bool,
}

static CONFIG_CALL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[^\w.])config\s*\(").expect("valid regex"));

/// Reads the literal keyword arguments of every `config(...)` call in the Jinja of `sql`.
pub fn scan_config(sql: &str) -> StaticConfig {
    let mut out = StaticConfig {
        complete: true,
        ..Default::default()
    };
    for block in JINJA.find_iter(sql) {
        let text = block.as_str();
        if !text.starts_with("{{") {
            continue;
        }
        for found in CONFIG_CALL.find_iter(text) {
            let mut parser = Literal {
                chars: text[found.end()..].chars().collect(),
                at: 0,
            };
            if !parser.keyword_arguments(&mut out) {
                out.complete = false;
            }
        }
    }
    out
}

/// A tiny reader of Python/Jinja literals for `config()` arguments.
struct Literal {
    chars: Vec<char>,
    at: usize,
}

impl Literal {
    fn skip_space(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_space();
        self.chars.get(self.at).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<String> {
        self.skip_space();
        let start = self.at;
        while self
            .chars
            .get(self.at)
            .is_some_and(|c| c.is_alphanumeric() || *c == '_')
        {
            self.at += 1;
        }
        (self.at > start).then(|| self.chars[start..self.at].iter().collect())
    }

    /// `key=value, ...)`: returns false when some value was not a literal.
    fn keyword_arguments(&mut self, out: &mut StaticConfig) -> bool {
        let mut complete = true;
        loop {
            if self.eat(')') {
                return complete;
            }
            let Some(key) = self.ident() else {
                return false;
            };
            if !self.eat('=') {
                return false;
            }
            let start = self.at;
            match self.value() {
                Some(value) if matches!(self.peek(), Some(',') | Some(')')) => {
                    out.config.insert(key, value);
                }
                _ => {
                    // Skip to the next top-level comma or the closing parenthesis.
                    complete = false;
                    self.at = start;
                    if !self.skip_expression() {
                        return false;
                    }
                }
            }
            self.eat(',');
        }
    }

    fn skip_expression(&mut self) -> bool {
        let mut depth = 0i32;
        while let Some(&c) = self.chars.get(self.at) {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' if depth == 0 => return c == ')',
                ')' | ']' | '}' => depth -= 1,
                ',' if depth == 0 => return true,
                '\'' | '"' => {
                    self.at += 1;
                    while self.chars.get(self.at).is_some_and(|d| *d != c) {
                        self.at += 1;
                    }
                }
                _ => {}
            }
            self.at += 1;
        }
        false
    }

    fn value(&mut self) -> Option<serde_json::Value> {
        use serde_json::Value as Json;
        match self.peek()? {
            q @ ('\'' | '"') => {
                self.at += 1;
                let mut s = String::new();
                loop {
                    let c = *self.chars.get(self.at)?;
                    self.at += 1;
                    match c {
                        '\\' => {
                            s.push(*self.chars.get(self.at)?);
                            self.at += 1;
                        }
                        c if c == q => break,
                        c => s.push(c),
                    }
                }
                Some(Json::String(s))
            }
            '[' | '(' => {
                let close = if self.eat('[') {
                    ']'
                } else {
                    self.at += 1;
                    ')'
                };
                let mut items = Vec::new();
                loop {
                    if self.eat(close) {
                        return Some(Json::Array(items));
                    }
                    items.push(self.value()?);
                    if !self.eat(',') && self.peek() != Some(close) {
                        return None;
                    }
                }
            }
            '{' => {
                self.at += 1;
                let mut map = serde_json::Map::new();
                loop {
                    if self.eat('}') {
                        return Some(Json::Object(map));
                    }
                    let Json::String(key) = self.value()? else {
                        return None;
                    };
                    if !self.eat(':') {
                        return None;
                    }
                    map.insert(key, self.value()?);
                    if !self.eat(',') && self.peek() != Some('}') {
                        return None;
                    }
                }
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = self.at;
                self.at += 1;
                while self
                    .chars
                    .get(self.at)
                    .is_some_and(|d| d.is_ascii_digit() || *d == '.')
                {
                    self.at += 1;
                }
                let text: String = self.chars[start..self.at].iter().collect();
                serde_json::from_str(&text).ok()
            }
            _ => match self.ident()?.as_str() {
                "true" | "True" => Some(Json::Bool(true)),
                "false" | "False" => Some(Json::Bool(false)),
                "none" | "None" => Some(Json::Null),
                _ => None,
            },
        }
    }
}
