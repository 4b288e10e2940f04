//! Reading a config: its file, `--set` overrides applied before parsing, serde's errors turned
//! into one line naming the file and field, and finding a config by name.

use std::path::{Path, PathBuf};

use super::{ExperimentConfig, Override, RawConfig, check_name};
use crate::error::InputError;

/// Fields whose value is a tagged enum: a bad or missing tag is reported at `<field>.kind`.
const TAGGED_FIELDS: [&str; 3] = ["task", "model", "optimizer"];

impl ExperimentConfig {
    /// Reads, parses and validates a config file. Every failure names the file and the field.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        Self::load_with(path, &[])
    }

    /// [`load`](Self::load), with fields set from the command line (`--set PATH=VALUE`) before
    /// the text is parsed: an override is typed and validated like the file, and a failure
    /// names the file and the overrides.
    pub fn load_with(path: &Path, overrides: &[Override]) -> Result<Self, InputError> {
        let text = crate::builtin::read(path)
            .map_err(|e| InputError(format!("{}: cannot read config: {e}", path.display())))?;
        let (text, origin) = if overrides.is_empty() {
            (text, path.to_path_buf())
        } else {
            let labels: Vec<String> = overrides.iter().map(Override::label).collect();
            let origin = PathBuf::from(format!(
                "{} with --set {}",
                path.display(),
                labels.join(" --set ")
            ));
            // The file must be valid JSON first; its own errors are reported as they are.
            let mut value: serde_json::Value =
                serde_json::from_str(&text).map_err(|_| match Self::parse(&text, path) {
                    Err(e) => e,
                    Ok(_) => InputError(format!("{}: malformed JSON", path.display())),
                })?;
            for o in overrides {
                o.apply(&mut value).map_err(|e| {
                    InputError(format!("{}: --set {}: {e}", path.display(), o.label()))
                })?;
            }
            (value.to_string(), origin)
        };
        let mut config = Self::parse(&text, &origin)?;
        if config.name.is_none() {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("experiment");
            check_name(stem).map_err(|e| e.in_file(path))?;
            config.name = Some(stem.to_string());
        }
        Ok(config)
    }

    /// Parses and validates JSON text; `origin` is only used in error messages.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, InputError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|err| {
            let mut field = err.path().to_string();
            let inner = err.into_inner();
            let message = tidy_serde_message(&inner.to_string());
            if inner.is_syntax() || inner.is_eof() {
                return InputError::at(origin, "", format!("malformed JSON: {message}"));
            }
            // The field path says where; serde_json's position points past a buffered object.
            let message = match message.rfind(" at line ") {
                Some(at) => message[..at].to_string(),
                None => message,
            };
            if TAGGED_FIELDS.contains(&field.as_str())
                && (message.starts_with("unknown variant") || message.contains("field `kind`"))
            {
                field.push_str(".kind");
            }
            InputError::at(origin, &field, message)
        })?;
        Self::try_from(raw).map_err(|e| e.in_file(origin))
    }
}

/// serde quotes names with backticks; a one-line error reads better with double quotes.
fn tidy_serde_message(message: &str) -> String {
    message.replace('`', "\"")
}

/// Where configs named without a path are looked up.
pub const CONFIG_DIR: &str = "configs";

/// Resolves `baseline` to `configs/baseline.json`, or takes a path as it is.
pub fn resolve_config_path(name: &str) -> Result<PathBuf, InputError> {
    resolve_named(
        name,
        Path::new(CONFIG_DIR),
        CONFIG_DIR,
        "config",
        "; `attnx list` shows the configs",
    )
}

/// `name` as a path if it is a file, else `<dir>/<name>.json`, else the built-in file of that
/// name in the built-in folder `builtin` (`CONFIG_DIR` or `EXPERIMENT_DIR`); `what` and `hint`
/// word the error.
pub fn resolve_named(
    name: &str,
    dir: &Path,
    builtin: &str,
    what: &str,
    hint: &str,
) -> Result<PathBuf, InputError> {
    let as_path = PathBuf::from(name);
    if as_path.is_file() || crate::builtin::is_builtin(&as_path) {
        return Ok(as_path);
    }
    let in_dir = dir.join(format!("{name}.json"));
    if in_dir.is_file() {
        return Ok(in_dir);
    }
    if let Some(builtin) = crate::builtin::path(builtin, name) {
        return Ok(builtin);
    }
    Err(InputError(format!(
        "{name}: no such {what} (looked for {}, {} and a built-in {what}{hint})",
        as_path.display(),
        in_dir.display()
    )))
}
