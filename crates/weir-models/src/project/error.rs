//! The one error type of project reading: every problem carries the file (and line when known)
//! and, where there is an obvious next step, a hint. Loading collects them all instead of stopping
//! at the first, so a user fixes a project in one pass.

use std::fmt;
use std::path::PathBuf;

/// Where a problem was found: a file and, when the parser knows it, a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: Option<usize>,
}

impl Location {
    pub fn new(file: impl Into<PathBuf>, line: Option<usize>) -> Self {
        Location {
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}", self.file.display(), line),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// What went wrong while reading a dbt project.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectErrorKind {
    #[error("cannot read '{path}': {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("invalid yaml: {0}")]
    Yaml(String),
    #[error("{0}")]
    Invalid(String),
    #[error("python models are not supported")]
    PythonModel,
    #[error("{0}")]
    Profile(String),
    #[error("package '{0}' is not installed")]
    MissingPackage(String),
    #[error("{node} depends on a node named '{target}' which was not found")]
    MissingRef { node: String, target: String },
    /// `table` is `source_name.table_name`.
    #[error("{node} depends on a source named '{table}' which was not found")]
    MissingSource { node: String, table: String },
    #[error("found a cycle: {0}")]
    Cycle(String),
    /// `dbt found two models with the name 'x': <first> and <second>`.
    #[error("{0}")]
    Duplicate(String),
    #[error("invalid selector '{0}'")]
    Selector(String),
}

/// One problem with its place and hint; `Display` gives `error at file:line: ... hint: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectError {
    pub kind: ProjectErrorKind,
    pub location: Option<Location>,
    pub hint: Option<String>,
}

impl ProjectError {
    pub fn new(kind: ProjectErrorKind) -> Self {
        ProjectError {
            kind,
            location: None,
            hint: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ProjectErrorKind::Invalid(message.into()))
    }

    pub fn at(mut self, file: impl Into<PathBuf>, line: Option<usize>) -> Self {
        self.location = Some(Location::new(file, line));
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ProjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: {}", self.kind)?,
            None => write!(f, "{}", self.kind)?,
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProjectError {}

/// Formats every error of a failed load, one after another, as the CLI prints them.
pub fn render_errors(errors: &[ProjectError]) -> String {
    errors
        .iter()
        .map(|e| format!("error: {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}
