//! Connections as Airflow has them: a type, host, schema, login, password, port and an `extra`
//! JSON object, written as a URI (`postgres://user:pass@host:5432/db?sslmode=disable`) or as
//! Airflow's JSON export. File databases put their path in `host`: `duckdb:///abs/path.duckdb`,
//! `duckdb://.weir/warehouse.duckdb` (relative to the project), `sqlite:///abs/path.db`.

use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
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
    /// Parses an Airflow-style URI. `conn_id` is set by the caller.
    pub fn from_uri(conn_id: &str, uri: &str) -> Result<Connection, String> {
        let uri = uri.trim();
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Err(format!(
                "'{}' is not a connection URI (expected TYPE://[LOGIN[:PASSWORD]@]HOST[:PORT][/SCHEMA][?EXTRA], e.g. postgres://user:pass@localhost:5432/db or duckdb:///path/to/file.duckdb)",
                mask_uri(uri)
            ));
        };
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_+.".contains(c))
        {
            return Err(format!("'{scheme}' is not a connection type"));
        }
        let conn_type = normalise_type(scheme);
        let mut conn = Connection {
            conn_id: conn_id.to_string(),
            conn_type: conn_type.clone(),
            ..Connection::default()
        };
        let (body, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        if FILE_TYPES.contains(&conn_type.as_str()) {
            conn.host = Some(decode(body)?).filter(|h| !h.is_empty());
        } else {
            let (authority, path) = match body.find('/') {
                Some(i) => (&body[..i], Some(&body[i + 1..])),
                None => (body, None),
            };
            let (userinfo, hostport) = match authority.rfind('@') {
                Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
                None => (None, authority),
            };
            if let Some(userinfo) = userinfo {
                let (login, password) = match userinfo.split_once(':') {
                    Some((l, p)) => (l, Some(p)),
                    None => (userinfo, None),
                };
                conn.login = Some(decode(login)?).filter(|s| !s.is_empty());
                conn.password = password.map(decode).transpose()?.filter(|s| !s.is_empty());
            }
            let (host, port) = split_port(hostport)?;
            conn.host = Some(decode(host)?).filter(|s| !s.is_empty());
            conn.port = port;
            conn.schema = path.map(decode).transpose()?.filter(|s| !s.is_empty());
        }
        if let Some(query) = query {
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let (k, v) = (decode(k)?, decode(v)?);
                if k == "__extra__" {
                    let parsed: Value = serde_json::from_str(&v)
                        .map_err(|e| format!("__extra__ is not JSON: {e}"))?;
                    if let Value::Object(map) = parsed {
                        conn.extra.extend(map);
                    }
                } else {
                    conn.extra.insert(k, Value::String(v));
                }
            }
        }
        Ok(conn)
    }

    /// The URI form (secrets included: callers mask it for display).
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
            uri.push_str(&encode(self.host.as_deref().unwrap_or("")));
            if let Some(port) = self.port {
                uri.push_str(&format!(":{port}"));
            }
            if let Some(schema) = &self.schema {
                uri.push('/');
                uri.push_str(&encode(schema));
            }
        }
        if !self.extra.is_empty() {
            let all_strings = self.extra.values().all(Value::is_string);
            let query: Vec<String> = if all_strings {
                self.extra
                    .iter()
                    .map(|(k, v)| format!("{}={}", encode(k), encode(v.as_str().unwrap_or(""))))
                    .collect()
            } else {
                vec![format!(
                    "__extra__={}",
                    encode(&Value::Object(self.extra.clone()).to_string())
                )]
            };
            uri.push('?');
            uri.push_str(&query.join("&"));
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

fn split_port(hostport: &str) -> Result<(&str, Option<u16>), String> {
    // [v6]:port or host:port
    if let Some(rest) = hostport.strip_prefix('[')
        && let Some(end) = rest.find(']')
    {
        let host = &hostport[..end + 2];
        let after = &rest[end + 1..];
        return match after.strip_prefix(':') {
            Some(p) => Ok((host, Some(parse_port(p)?))),
            None => Ok((host, None)),
        };
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() => Ok((host, Some(parse_port(port)?))),
        Some((host, _)) => Ok((host, None)),
        None => Ok((hostport, None)),
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.parse()
        .map_err(|_| format!("port '{text}' is not a number from 1 to 65535"))
}

fn decode(text: &str) -> Result<String, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|e| format!("'{text}' is not valid UTF-8 after percent-decoding: {e}"))
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC)
        .to_string()
        .replace("%2E", ".")
        .replace("%2D", "-")
        .replace("%5F", "_")
        .replace("%7E", "~")
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
