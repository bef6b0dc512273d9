//! Errors of the Jinja layer, each naming the template file and line minijinja reports.

use std::error::Error as _;

/// An error while loading macros or compiling a template.
#[derive(Debug, thiserror::Error)]
pub enum JinjaError {
    /// The template (a model or a macro file) failed to compile or render.
    #[error("{message} (in {location})")]
    Template { message: String, location: String },
    /// A macro file could not be read.
    #[error("cannot read macro file '{path}': {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Two macros of one package share a name.
    #[error("macro '{name}' of package '{package}' is defined twice: in {first} and in {second}")]
    DuplicateMacro {
        package: String,
        name: String,
        first: String,
        second: String,
    },
    /// Several macro files failed to load; all are reported at once.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<JinjaError>),
    /// A macro the engine itself calls (e.g. `generate_schema_name`) does not exist.
    #[error("no macro named '{0}'")]
    UnknownMacro(String),
}

impl JinjaError {
    /// Converts a minijinja error, keeping the innermost template file and line it reports.
    pub fn from_minijinja(err: &minijinja::Error) -> JinjaError {
        let message = match err.detail() {
            Some(detail) => detail.to_string(),
            None => err.kind().to_string(),
        };
        let mut location = match (err.name(), err.line()) {
            (Some(name), Some(line)) => format!("{name}:{line}"),
            (Some(name), None) => name.to_string(),
            _ => "<unknown>".to_string(),
        };
        // minijinja keeps the location of the innermost failing template in nested errors.
        let mut source = err.source();
        while let Some(inner) = source {
            if let Some(inner) = inner.downcast_ref::<minijinja::Error>()
                && let (Some(name), Some(line)) = (inner.name(), inner.line())
            {
                location = format!("{name}:{line}");
            }
            source = inner.source();
        }
        JinjaError::Template { message, location }
    }
}

impl From<minijinja::Error> for JinjaError {
    fn from(err: minijinja::Error) -> Self {
        JinjaError::from_minijinja(&err)
    }
}
