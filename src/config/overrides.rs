//! `--set PATH=VALUE`: a config field changed from the command line, by its JSON path, before
//! the config is parsed, so that it is typed and validated exactly like the file; and sweep
//! axes, `--set PATH=V1,V2,...` or `PATH=START:STOP:STEP` (`*FACTOR` for a geometric step).

use std::path::Path;
use std::str::FromStr;

use serde_json::Value;

use super::ExperimentConfig;
use crate::error::InputError;

/// One field set from the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The JSON path, `task.train_steps` as `["task", "train_steps"]`.
    pub path: Vec<String>,
    /// The value: JSON if it parses as JSON (`20000`, `true`, `[1, 2]`), else a string (`dot`).
    pub value: Value,
}

impl Override {
    /// `path=value`, as labels and error messages print it.
    pub fn label(&self) -> String {
        format!("{}={}", self.path.join("."), plain(&self.value))
    }

    /// Puts the value at the path in `root`, making the objects on the way that are missing.
    pub fn apply(&self, root: &mut Value) -> Result<(), String> {
        let mut at = root;
        for (i, key) in self.path.iter().enumerate() {
            let Value::Object(map) = at else {
                return Err(format!(
                    "{} is not an object, so it has no field {key:?}",
                    self.path[..i].join(".")
                ));
            };
            if i + 1 == self.path.len() {
                map.insert(key.clone(), self.value.clone());
                return Ok(());
            }
            at = map
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Default::default()));
        }
        Ok(())
    }
}

/// A value as a label shows it: strings without quotes.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn split_path(text: &str, whole: &str) -> Result<Vec<String>, String> {
    let path: Vec<String> = text.split('.').map(str::to_string).collect();
    if path.iter().any(String::is_empty) {
        return Err(format!(
            "{whole:?}: expected PATH=VALUE, a dotted field path such as task.train_steps=20000"
        ));
    }
    Ok(path)
}

fn parse_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

impl FromStr for Override {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (path, value) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected PATH=VALUE, e.g. task.train_steps=20000"))?;
        Ok(Override {
            path: split_path(path.trim(), s)?,
            value: parse_value(value.trim()),
        })
    }
}

/// One axis of a sweep: a field and the values it takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub path: Vec<String>,
    pub values: Vec<Value>,
}

impl Axis {
    /// The dotted path.
    pub fn key(&self) -> String {
        self.path.join(".")
    }

    /// `path=v1,v2,...`, as `--set` takes it back.
    pub fn label(&self) -> String {
        let values: Vec<String> = self.values.iter().map(plain).collect();
        format!("{}={}", self.key(), values.join(","))
    }

    /// The override that puts value `i` on this axis.
    pub fn at(&self, i: usize) -> Override {
        Override {
            path: self.path.clone(),
            value: self.values[i].clone(),
        }
    }
}

impl FromStr for Axis {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (path, values) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected PATH=V1,V2,... or PATH=START:STOP:STEP"))?;
        let mut out = Vec::new();
        for item in split_top_level(values.trim()) {
            match range(item.trim()).map_err(|e| format!("{s:?}: {e}"))? {
                Some(values) => out.extend(values),
                None => out.push(parse_value(item.trim())),
            }
        }
        if out.is_empty() {
            return Err(format!("{s:?}: no values"));
        }
        Ok(Axis {
            path: split_path(path.trim(), s)?,
            values: out,
        })
    }
}

/// `values` split at the commas that are not inside brackets, braces or quotes.
fn split_top_level(values: &str) -> Vec<&str> {
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    let mut items = Vec::new();
    for (i, c) in values.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '[' | '{' if !quoted => depth += 1,
            ']' | '}' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                items.push(&values[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&values[start..]);
    items.into_iter().filter(|v| !v.trim().is_empty()).collect()
}

/// `START:STOP:STEP` (arithmetic) or `START:STOP:*FACTOR` (geometric), STOP included when
/// the steps reach it; `None` for anything else.
fn range(item: &str) -> Result<Option<Vec<Value>>, String> {
    let parts: Vec<&str> = item.split(':').collect();
    let [start, stop, step] = parts[..] else {
        return Ok(None);
    };
    let (Ok(a), Ok(b)) = (start.parse::<f64>(), stop.parse::<f64>()) else {
        return Ok(None);
    };
    let geometric = step.strip_prefix('*');
    let by: f64 = geometric
        .unwrap_or(step)
        .parse()
        .map_err(|_| format!("{item}: the step {step:?} is not a number"))?;
    let grows = match geometric {
        Some(_) => by > 1.0 && a > 0.0,
        None => by > 0.0,
    };
    if !grows || b < a {
        return Err(format!(
            "{item}: a range needs START <= STOP and a step that moves towards STOP"
        ));
    }
    let integers = [start, stop, geometric.unwrap_or(step)]
        .iter()
        .all(|t| t.parse::<i64>().is_ok());
    let mut values = Vec::new();
    let mut x = a;
    while x <= b * (1.0 + 1e-12) {
        values.push(if integers {
            Value::from(x.round() as i64)
        } else {
            Value::from(x)
        });
        if values.len() > 1000 {
            return Err(format!("{item}: more than 1000 values"));
        }
        x = match geometric {
            Some(_) => x * by,
            None => a + by * values.len() as f64,
        };
    }
    Ok(Some(values))
}

/// `--set` arguments parsed as overrides or axes; a bad one is a one-line input error.
pub fn parse_all<T: FromStr<Err = String>>(sets: &[String]) -> Result<Vec<T>, InputError> {
    sets.iter()
        .map(|s| s.parse().map_err(|e| InputError(format!("--set {e}"))))
        .collect()
}

/// `name [path=value, ...]` naming `overrides`, or `name` alone when there are none: how
/// tables label a config changed from the command line or a sweep's point.
pub fn label(name: &str, overrides: &[Override]) -> String {
    if overrides.is_empty() {
        return name.to_string();
    }
    let settings: Vec<String> = overrides.iter().map(Override::label).collect();
    format!("{name} [{}]", settings.join(", "))
}

/// Every point of the grid of `axes` over the config file `base`: the config, its label
/// (naming the axes that vary: a single-valued one is the same everywhere) and its value on
/// each axis.
pub fn grid_configs(
    base: &Path,
    axes: &[Axis],
) -> Result<Vec<(ExperimentConfig, String, Vec<Value>)>, InputError> {
    grid(axes)
        .into_iter()
        .map(|point| {
            let config = ExperimentConfig::load_with(base, &point)?;
            let varying: Vec<Override> = point
                .iter()
                .zip(axes)
                .filter(|(_, axis)| axis.values.len() > 1)
                .map(|(o, _)| o.clone())
                .collect();
            let label = label(config.name(), &varying);
            let values = point.into_iter().map(|o| o.value).collect();
            Ok((config, label, values))
        })
        .collect()
}

/// Every combination of the axes' values (the first axis varies slowest), as overrides.
pub fn grid(axes: &[Axis]) -> Vec<Vec<Override>> {
    axes.iter().fold(vec![Vec::new()], |points, axis| {
        points
            .iter()
            .flat_map(|point| {
                (0..axis.values.len()).map(move |i| {
                    let mut point = point.clone();
                    point.push(axis.at(i));
                    point
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn overrides_parse_typed_values_and_nested_paths() {
        let o: Override = "task.train_steps=20000".parse().unwrap();
        assert_eq!(o.path, ["task", "train_steps"]);
        assert_eq!(o.value, json!(20000));
        assert_eq!(
            "model.score=dot".parse::<Override>().unwrap().value,
            json!("dot")
        );
        let nested: Override = r#"task.early_stopping={"metric": "test_loss"}"#.parse().unwrap();
        assert_eq!(nested.value, json!({"metric": "test_loss"}));
        assert!("task.train_steps".parse::<Override>().is_err());
        assert!("task..x=1".parse::<Override>().is_err());

        let mut config = json!({"task": {"kind": "echo"}, "repeats": 3});
        "task.early_stopping.patience=2"
            .parse::<Override>()
            .unwrap()
            .apply(&mut config)
            .unwrap();
        assert_eq!(config["task"]["early_stopping"]["patience"], json!(2));
        let err = "repeats.x=1"
            .parse::<Override>()
            .unwrap()
            .apply(&mut config);
        assert_eq!(
            err.unwrap_err(),
            "repeats is not an object, so it has no field \"x\""
        );
    }

    #[test]
    fn axes_take_lists_and_ranges() {
        let axis: Axis = "model.score=additive,dot,general".parse().unwrap();
        assert_eq!(
            axis.values,
            [json!("additive"), json!("dot"), json!("general")]
        );
        let steps: Axis = "task.train_steps=5000:20000:*2".parse().unwrap();
        assert_eq!(steps.values, [json!(5000), json!(10000), json!(20000)]);
        let n: Axis = "task.n_in=5:20:5".parse().unwrap();
        assert_eq!(n.values, [json!(5), json!(10), json!(15), json!(20)]);
        let lr: Axis = "optimizer.lr=0.001:0.003:0.001".parse().unwrap();
        assert_eq!(lr.values.len(), 3);
        let lists: Axis = "x=[1,2],[3]".parse().unwrap();
        assert_eq!(lists.values, [json!([1, 2]), json!([3])]);
        assert!("x=5:1:1".parse::<Axis>().is_err());
        assert!("x=1:5:*1".parse::<Axis>().is_err());

        let grid = grid(&[axis, "task.n_in=5,10".parse().unwrap()]);
        assert_eq!(grid.len(), 6);
        let labels: Vec<String> = grid[1].iter().map(Override::label).collect();
        assert_eq!(labels, ["model.score=additive", "task.n_in=10"]);
    }
}
