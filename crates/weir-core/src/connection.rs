//! Connections as Airflow has them: a type, host, schema, login, password, port and an `extra`
//! JSON object, written as a URI (`postgres://user:pass@host:5432/db?sslmode=disable`) or as
//! Airflow's JSON export. File databases put their path in `host`: `duckdb:///abs/path.duckdb`,
//! `duckdb://.weir/warehouse.duckdb` (relative to the project), `sqlite:///abs/path.db`.

// `url` splits the URI; its parts come percent-encoded, and `percent_encoding` (which `url` is
// built on) decodes them and encodes them for `to_uri`.
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One connection. `password` and the secret keys of `extra` are plain here; the store
/// encrypts them at rest and every printer masks them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    pub conn_id: String,
    pub conn_type: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub login: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// Connection types whose "host" is a file path.
const FILE_TYPES: &[&str] = &["duckdb", "sqlite"];

/// Words that make a key secret, as Airflow's `DEFAULT_SENSITIVE_FIELDS`.
const SECRET_WORDS: &[&str] = &[
    "password",
    "secret",
    "passwd",
    "authorization",
    "api_key",
    "apikey",
    "access_token",
    "private_key",
    "token",
    "credential",
];

/// True when a variable name or `extra` key names a secret (`db_password`, `API_KEY`, ...).
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| key.contains(w))
}

impl Connection {
    /// Parses an Airflow-style URI (as Airflow's `Connection(uri=...)`): the scheme is the type
    /// (`-` → `_`, `postgresql` → `postgres`); login, password, host and the path (the
    /// schema) are percent-decoded; query parameters become `extra`, or `__extra__` holds it
    /// as JSON; `http://https://host` keeps its protocol in the host. File databases take
    /// everything after `TYPE://` up to the query as the path in `host`. `conn_id` is set by
    /// the caller.
    pub fn from_uri(conn_id: &str, uri: &str) -> Result<Connection, String> {
        let uri = uri.trim();
        let not_a_uri = || {
            format!(
                "'{}' is not a connection URI (expected TYPE://[LOGIN[:PASSWORD]@]HOST[:PORT][/SCHEMA][?EXTRA], e.g. postgres://user:pass@localhost:5432/db or duckdb:///path/to/file.duckdb)",
                mask_uri(uri)
            )
        };
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Err(not_a_uri());
        };
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_+.".contains(c))
        {
            return Err(format!("'{scheme}' is not a connection type"));
        }
        let conn_type = normalise_type(scheme);
        // URL schemes have no `_`; Airflow's URIs spell `google_cloud_platform` with `-`.
        let scheme = scheme.replace('_', "-");
        let mut conn = Connection {
            conn_id: conn_id.to_string(),
            conn_type: conn_type.clone(),
            ..Connection::default()
        };
        let parse_error = |e: url::ParseError| match e {
            url::ParseError::InvalidPort => format!(
                "the port in '{}' is not a number from 0 to 65535",
                mask_uri(uri)
            ),
            _ => not_a_uri(),
        };
        let url = if FILE_TYPES.contains(&conn_type.as_str()) {
            // A path, not an authority: `duckdb://.weir/w.duckdb` is the relative path
            // `.weir/w.duckdb`, `duckdb:///abs/w.duckdb` the absolute one.
            let url = url::Url::parse(&format!("{scheme}:{rest}")).map_err(parse_error)?;
            conn.host = Some(decode(url.path())?).filter(|h| !h.is_empty());
            url
        } else {
            // Airflow's `TYPE://PROTOCOL://HOST...`: the host keeps its protocol.
            let (protocol, rest) = match rest.split_once("://") {
                Some((protocol, rest))
                    if !protocol.is_empty()
                        && protocol
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
                {
                    (Some(protocol), rest)
                }
                _ => (None, rest),
            };
            let url = url::Url::parse(&format!("{scheme}://{rest}")).map_err(parse_error)?;
            conn.login = Some(decode(url.username())?).filter(|s| !s.is_empty());
            conn.password = url.password().map(decode).transpose()?;
            conn.password = conn.password.filter(|s| !s.is_empty());
            let host = decode(url.host_str().unwrap_or(""))?;
            conn.host = match protocol {
                Some(p) => Some(format!("{p}://{host}")),
                None => Some(host).filter(|s| !s.is_empty()),
            };
            conn.port = url.port();
            let path = url.path().strip_prefix('/').unwrap_or(url.path());
            conn.schema = Some(decode(path)?).filter(|s| !s.is_empty());
            url
        };
        for (k, v) in url.query_pairs() {
            if k == "__extra__" {
                let parsed: Value =
                    serde_json::from_str(&v).map_err(|e| format!("__extra__ is not JSON: {e}"))?;
                if let Value::Object(map) = parsed {
                    conn.extra.extend(map);
                }
            } else {
                conn.extra
                    .insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
        Ok(conn)
    }

    /// The URI form (secrets included: callers mask it for display), as Airflow's `get_uri`:
    /// the parts percent-encoded, `extra` as query parameters when every value is a string,
    /// else as `__extra__` JSON.
    pub fn to_uri(&self) -> String {
        let mut uri = format!("{}://", self.conn_type.replace('_', "-"));
        if FILE_TYPES.contains(&self.conn_type.as_str()) {
            uri.push_str(self.host.as_deref().unwrap_or(""));
        } else {
            if self.login.is_some() || self.password.is_some() {
                uri.push_str(&encode(self.login.as_deref().unwrap_or("")));
                if let Some(p) = &self.password {
                    uri.push(':');
                    uri.push_str(&encode(p));
                }
                uri.push('@');
            }
            let host = self.host.as_deref().unwrap_or("");
            match host.split_once("://") {
                Some((protocol, host)) => {
                    uri.push_str(&format!("{protocol}://{}", encode(host)));
                }
                None => uri.push_str(&encode(host)),
            }
            if let Some(port) = self.port {
                uri.push_str(&format!(":{port}"));
            }
            if let Some(schema) = &self.schema {
                uri.push('/');
                uri.push_str(&encode(schema));
            }
        }
        if !self.extra.is_empty() {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            if self.extra.values().all(Value::is_string) {
                for (k, v) in &self.extra {
                    query.append_pair(k, v.as_str().unwrap_or(""));
                }
            } else {
                query.append_pair("__extra__", &Value::Object(self.extra.clone()).to_string());
            }
            uri.push('?');
            uri.push_str(&query.finish());
        }
        uri
    }

    /// Reads one entry of Airflow's `connections export` JSON (`extra` as a JSON string or an
    /// object), or `{"uri": ...}`.
    pub fn from_airflow_json(conn_id: &str, value: &Value) -> Result<Connection, String> {
        let Value::Object(map) = value else {
            return Err(format!("connection '{conn_id}' is not a JSON object"));
        };
        if let Some(uri) = map.get("uri").and_then(Value::as_str) {
            return Connection::from_uri(conn_id, uri);
        }
        let text = |key: &str| -> Option<String> {
            match map.get(key) {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            }
        };
        let conn_type =
            text("conn_type").ok_or_else(|| format!("connection '{conn_id}' has no conn_type"))?;
        let port = match map.get("port") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(
                n.as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| format!("connection '{conn_id}': port {n} is out of range"))?,
            ),
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(
                s.parse()
                    .map_err(|_| format!("connection '{conn_id}': port '{s}' is not a number"))?,
            ),
            Some(other) => {
                return Err(format!(
                    "connection '{conn_id}': port {other} is not a number"
                ));
            }
        };
        let extra = match map.get("extra") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::String(s)) if s.trim().is_empty() => Map::new(),
            Some(Value::String(s)) => match serde_json::from_str(s) {
                Ok(Value::Object(m)) => m,
                _ => {
                    return Err(format!(
                        "connection '{conn_id}': extra is not a JSON object"
                    ));
                }
            },
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                return Err(format!(
                    "connection '{conn_id}': extra is not a JSON object"
                ));
            }
        };
        Ok(Connection {
            conn_id: conn_id.to_string(),
            conn_type: normalise_type(&conn_type),
            description: text("description"),
            host: text("host"),
            schema: text("schema"),
            login: text("login"),
            password: text("password"),
            port,
            extra,
        })
    }

    /// Airflow's export shape: `extra` as a JSON string.
    pub fn to_airflow_json(&self) -> Value {
        serde_json::json!({
            "conn_type": self.conn_type,
            "description": self.description,
            "host": self.host,
            "login": self.login,
            "password": self.password,
            "schema": self.schema,
            "port": self.port,
            "extra": if self.extra.is_empty() { Value::Null } else { Value::String(Value::Object(self.extra.clone()).to_string()) },
        })
    }

    /// The secret values of this connection (password, secret `extra` fields), for masking.
    pub fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = self.password.iter().cloned().collect();
        for (k, v) in &self.extra {
            if is_secret_key(k) {
                match v {
                    Value::String(s) => out.push(s.clone()),
                    Value::Null => {}
                    other => out.push(other.to_string()),
                }
            }
        }
        out.retain(|s| !s.is_empty());
        out
    }

    /// A copy with every secret replaced by `***`, for listings.
    pub fn masked(&self) -> Connection {
        let mut c = self.clone();
        if c.password.is_some() {
            c.password = Some("***".into());
        }
        for (k, v) in c.extra.iter_mut() {
            if is_secret_key(k) && !v.is_null() {
                *v = Value::String("***".into());
            }
        }
        c
    }

    /// The value templates see as `conn.ID`: host, port, login, password, schema, extra,
    /// extra_dejson, conn_type, conn_id, uri (as Airflow's Connection attributes).
    pub fn template_value(&self) -> Value {
        serde_json::json!({
            "conn_id": self.conn_id,
            "conn_type": self.conn_type,
            "description": self.description,
            "host": self.host,
            "schema": self.schema,
            "login": self.login,
            "password": self.password,
            "port": self.port,
            "extra": Value::Object(self.extra.clone()).to_string(),
            "extra_dejson": Value::Object(self.extra.clone()),
            "uri": self.to_uri(),
        })
    }
}

/// `postgresql` → `postgres`, `google-cloud-platform` → `google_cloud_platform`, as Airflow.
fn normalise_type(scheme: &str) -> String {
    let t = scheme.to_ascii_lowercase().replace('-', "_");
    match t.as_str() {
        "postgresql" => "postgres".into(),
        _ => t,
    }
}

fn decode(text: &str) -> Result<String, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|e| format!("'{text}' is not valid UTF-8 after percent-decoding: {e}"))
}

/// Everything but RFC 3986's unreserved characters, as Python's `quote(text, safe="")`.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// A URI with its password replaced by `***`, safe to print in an error.
pub fn mask_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => match authority[..at].split_once(':') {
            Some((login, _)) => format!(
                "{scheme}://{login}:***@{}{}",
                &authority[at + 1..],
                &rest[authority_end..]
            ),
            None => uri.to_string(),
        },
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_like_airflow() {
        let c = Connection::from_uri(
            "wh",
            "postgresql://us%40r:p%3Ass@db.local:5433/analytics?sslmode=disable",
        )
        .unwrap();
        assert_eq!(c.conn_type, "postgres");
        assert_eq!(c.login.as_deref(), Some("us@r"));
        assert_eq!(c.password.as_deref(), Some("p:ss"));
        assert_eq!(c.host.as_deref(), Some("db.local"));
        assert_eq!(c.port, Some(5433));
        assert_eq!(c.schema.as_deref(), Some("analytics"));
        assert_eq!(c.extra["sslmode"], "disable");
        assert_eq!(Connection::from_uri("wh", &c.to_uri()).unwrap(), c);

        let d = Connection::from_uri("w", "duckdb:///tmp/w.duckdb").unwrap();
        assert_eq!(d.host.as_deref(), Some("/tmp/w.duckdb"));
        let d = Connection::from_uri("w", "duckdb://.weir/warehouse.duckdb").unwrap();
        assert_eq!(d.host.as_deref(), Some(".weir/warehouse.duckdb"));
        assert_eq!(d.to_uri(), "duckdb://.weir/warehouse.duckdb");

        assert!(
            Connection::from_uri("x", "not a uri")
                .unwrap_err()
                .contains("TYPE://")
        );
        assert!(
            Connection::from_uri("x", "postgres://h:99999/db")
                .unwrap_err()
                .contains("port")
        );
        assert_eq!(
            mask_uri("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
    }

    /// `type login=.. password=.. host=.. port=.. schema=.. extra=..`, the parts that are set.
    fn summary(c: &Connection) -> String {
        let mut out = c.conn_type.clone();
        let parts = [
            ("login", c.login.clone()),
            ("password", c.password.clone()),
            ("host", c.host.clone()),
            ("port", c.port.map(|p| p.to_string())),
            ("schema", c.schema.clone()),
        ];
        for (name, value) in parts {
            if let Some(value) = value {
                out.push_str(&format!(" {name}={value}"));
            }
        }
        if !c.extra.is_empty() {
            out.push_str(&format!(" extra={}", Value::Object(c.extra.clone())));
        }
        out
    }

    #[test]
    fn uris_parse_by_airflows_rules() {
        let cases = [
            ("sqlite:///abs/path.db", "sqlite host=/abs/path.db"),
            (
                "duckdb:///my%20dir/w.duckdb",
                "duckdb host=/my dir/w.duckdb",
            ),
            (
                "duckdb://w.duckdb?threads=4",
                r#"duckdb host=w.duckdb extra={"threads":"4"}"#,
            ),
            ("sqlite://", "sqlite"),
            ("duckdb://:memory:", "duckdb host=:memory:"),
            ("postgres://h:/db", "postgres host=h schema=db"),
            (
                "google-cloud-platform://?project=p",
                r#"google_cloud_platform extra={"project":"p"}"#,
            ),
            ("google_cloud_platform://", "google_cloud_platform"),
            ("postgres:///db", "postgres schema=db"),
            (
                "postgres://u:p@ss@h/db",
                "postgres login=u password=p@ss host=h schema=db",
            ),
            (
                "postgres://user@h:5432",
                "postgres login=user host=h port=5432",
            ),
            (
                "postgres://%5B%5D@my%20host/a%2Fb",
                "postgres login=[] host=my host schema=a/b",
            ),
            (
                "mysql://h/db?a=1&b=two+words&c=",
                r#"mysql host=h schema=db extra={"a":"1","b":"two words","c":""}"#,
            ),
            (
                "http://h?__extra__=%7B%22timeout%22%3A5%7D",
                r#"http host=h extra={"timeout":5}"#,
            ),
            (
                "http://https://api.example.com:8443/v1",
                "http host=https://api.example.com port=8443 schema=v1",
            ),
        ];
        for (uri, expected) in cases {
            let c = Connection::from_uri("c", uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(summary(&c), expected, "{uri}");
            let again = Connection::from_uri("c", &c.to_uri()).unwrap();
            assert_eq!(again, c, "{uri} → {}", c.to_uri());
        }
    }

    #[test]
    fn airflow_export_json_reads_and_masks() {
        let v: Value = serde_json::from_str(
            r#"{"conn_type": "http", "host": "api.example.com", "login": null, "password": "tok",
                "schema": "https", "port": 443, "extra": "{\"api_key\": \"k1\", \"timeout\": 5}"}"#,
        )
        .unwrap();
        let c = Connection::from_airflow_json("api", &v).unwrap();
        assert_eq!(c.port, Some(443));
        assert_eq!(c.secrets(), vec!["tok".to_string(), "k1".to_string()]);
        let m = c.masked();
        assert_eq!(m.password.as_deref(), Some("***"));
        assert_eq!(m.extra["api_key"], "***");
        assert_eq!(m.extra["timeout"], 5);
        assert!(is_secret_key("DB_PASSWORD") && !is_secret_key("region"));
    }
}

/// Replaces known secret values with `***` in text bound for a log, page or listing: one pass
/// over the text for all secrets (Aho-Corasick), the longest match winning, so a secret that
/// contains another is masked whole.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    secrets: Option<aho_corasick::AhoCorasick>,
}

impl Masker {
    /// Secrets shorter than four characters are ignored: masking `ab` everywhere would hide
    /// more than it protects.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Masker {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.chars().count() >= 4)
            .collect();
        secrets.sort();
        secrets.dedup();
        if secrets.is_empty() {
            return Masker::default();
        }
        let matcher = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(&secrets)
            .ok();
        Masker { secrets: matcher }
    }

    /// True when there is no secret to mask: text passes through unchanged.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_none()
    }

    pub fn mask<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.secrets {
            Some(ac) if ac.is_match(text) => {
                let stars = vec!["***"; ac.patterns_len()];
                std::borrow::Cow::Owned(ac.replace_all(text, &stars))
            }
            _ => std::borrow::Cow::Borrowed(text),
        }
    }
}

#[cfg(test)]
mod mask_tests {
    #[test]
    fn masks_every_occurrence_and_ignores_tiny_secrets() {
        let m = super::Masker::new(["hunter22".to_string(), "ab".to_string()]);
        assert_eq!(
            m.mask("pw=hunter22; again hunter22 ab"),
            "pw=***; again *** ab"
        );
        let nested = super::Masker::new(["s3cret".to_string(), "s3cret-and-more".to_string()]);
        assert_eq!(nested.mask("[s3cret-and-more] [s3cret]"), "[***] [***]");
        assert_eq!(super::Masker::default().mask("nothing"), "nothing");
    }
}
