//! Packages: what `packages.yml` / `dependencies.yml` declare, which installed projects
//! `dbt_packages/` (or `packages-install-path`) holds, and `weir models deps` for `local:`
//! packages (symlinked into the install folder, as `dbt deps` does).

use std::path::{Path, PathBuf};

use super::error::{ProjectError, ProjectErrorKind};
use super::settings::ProjectSettings;
use super::yaml::Yaml;

/// One entry of `packages.yml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageSpec {
    /// `package: dbt-labs/dbt_utils` with `version:`.
    Hub {
        package: String,
        version: Vec<String>,
    },
    /// `git: https://...` with `revision:` and `subdirectory:`.
    Git {
        url: String,
        revision: Option<String>,
        subdirectory: Option<String>,
    },
    /// `local: ../path`.
    Local { path: PathBuf },
}

/// A declared package, where it came from in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredPackage {
    pub spec: PackageSpec,
    pub file: PathBuf,
    pub line: usize,
}

impl DeclaredPackage {
    /// The folder name the package is expected under in the install path. For hub and git
    /// packages that is the last segment of the name or URL; for local ones the project name
    /// in the local `dbt_project.yml`, else the folder name.
    pub fn install_name(&self, project_dir: &Path) -> String {
        match &self.spec {
            PackageSpec::Hub { package, .. } => {
                package.rsplit('/').next().unwrap_or(package).to_string()
            }
            PackageSpec::Git {
                url, subdirectory, ..
            } => {
                let base = subdirectory
                    .as_deref()
                    .and_then(|s| s.trim_end_matches('/').rsplit('/').next())
                    .unwrap_or_else(|| url.trim_end_matches('/').rsplit('/').next().unwrap_or(url));
                base.trim_end_matches(".git").to_string()
            }
            PackageSpec::Local { path } => {
                let dir = project_dir.join(path);
                ProjectSettings::load(&dir)
                    .map(|s| s.name)
                    .unwrap_or_else(|_| {
                        dir.file_name()
                            .map(|n| n.to_string_lossy().to_string())
                            .unwrap_or_default()
                    })
            }
        }
    }

    /// How the package is named in messages.
    pub fn display_name(&self) -> String {
        match &self.spec {
            PackageSpec::Hub { package, .. } => package.clone(),
            PackageSpec::Git { url, .. } => url.clone(),
            PackageSpec::Local { path } => path.display().to_string(),
        }
    }
}

/// Reads `packages.yml`, else `dependencies.yml`, of a project; no file means no packages.
pub fn declared_packages(project_dir: &Path) -> Result<Vec<DeclaredPackage>, Vec<ProjectError>> {
    let mut declared = Vec::new();
    let mut errors = Vec::new();
    for name in ["packages.yml", "dependencies.yml"] {
        let file = project_dir.join(name);
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let doc = match Yaml::parse(&text, &file) {
            Ok(doc) => doc,
            Err(e) => return Err(vec![e]),
        };
        for entry in doc.at("packages").as_seq() {
            let spec = if let Some(package) = entry.at("package").as_str() {
                PackageSpec::Hub {
                    package: package.to_string(),
                    version: entry.at("version").string_list(),
                }
            } else if let Some(url) = entry.at("git").as_str() {
                PackageSpec::Git {
                    url: url.to_string(),
                    revision: entry.at("revision").scalar_text(),
                    subdirectory: entry.at("subdirectory").scalar_text(),
                }
            } else if let Some(path) = entry.at("local").as_str() {
                PackageSpec::Local {
                    path: PathBuf::from(path),
                }
            } else {
                errors.push(
                    ProjectError::invalid("a package entry has none of 'package', 'git', 'local'")
                        .at(&file, Some(entry.line))
                        .hint("write `- package: dbt-labs/dbt_utils` with `version:`, or `- local: ../path`"),
                );
                continue;
            };
            declared.push(DeclaredPackage {
                spec,
                file: file.clone(),
                line: entry.line,
            });
        }
        // dbt reads only one of the two files.
        break;
    }
    if errors.is_empty() {
        Ok(declared)
    } else {
        Err(errors)
    }
}

/// Installs the `local:` packages of a project into its packages-install-path by symlink
/// (replacing an older link or copy). Hub and git packages are reported as not installable
/// here. Returns the installed package names.
pub fn install_local_packages(project_dir: &Path) -> Result<Vec<String>, Vec<ProjectError>> {
    let settings = ProjectSettings::load(project_dir).map_err(|e| vec![e])?;
    let declared = declared_packages(project_dir)?;
    let install_dir = project_dir.join(&settings.packages_install_path);
    let mut installed = Vec::new();
    let mut errors = Vec::new();
    for package in &declared {
        let PackageSpec::Local { path } = &package.spec else {
            errors.push(
                ProjectError::invalid(format!(
                    "package '{}' cannot be installed: only local packages are supported",
                    package.display_name()
                ))
                .at(&package.file, Some(package.line))
                .hint(format!(
                    "download it into {}/ yourself, or declare it with `local:`",
                    settings.packages_install_path
                )),
            );
            continue;
        };
        let source = match project_dir.join(path).canonicalize() {
            Ok(source) if source.join("dbt_project.yml").is_file() => source,
            _ => {
                errors.push(
                    ProjectError::invalid(format!(
                        "local package '{}' has no dbt_project.yml",
                        path.display()
                    ))
                    .at(&package.file, Some(package.line)),
                );
                continue;
            }
        };
        let name = package.install_name(project_dir);
        let target = install_dir.join(&name);
        let result = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(&install_dir)?;
            if let Ok(meta) = std::fs::symlink_metadata(&target) {
                if meta.is_dir() && !meta.file_type().is_symlink() {
                    std::fs::remove_dir_all(&target)?;
                } else {
                    std::fs::remove_file(&target)?;
                }
            }
            link_dir(&source, &target)
        })();
        match result {
            Ok(()) => installed.push(name),
            Err(e) => errors.push(ProjectError::new(ProjectErrorKind::Io {
                path: target,
                reason: e.to_string(),
            })),
        }
    }
    if errors.is_empty() {
        Ok(installed)
    } else {
        Err(errors)
    }
}

#[cfg(unix)]
fn link_dir(source: &Path, target: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(source, target)
}

#[cfg(not(unix))]
fn link_dir(source: &Path, target: &Path) -> std::io::Result<()> {
    copy_dir(source, target)
}

#[cfg(not(unix))]
fn copy_dir(source: &Path, target: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(target)?;
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        let to = target.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &to)?;
        } else {
            std::fs::copy(entry.path(), to)?;
        }
    }
    Ok(())
}
