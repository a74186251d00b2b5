//! Experiment configs: YAML files with the reference code's key names, so that a
//! Hydra config of the authors' code ports over as it is.
//!
//! - `defaults:` lists are honoured as Hydra composes them: entries merge in list
//!   order (`_self_` is the file itself, a name is `<name>.yaml` beside it), later
//!   ones overriding earlier ones, maps merged key by key.
//! - `${a.b}` inside strings is replaced by the value at `a.b` (Hydra's
//!   interpolation, as in `dir: ${output_path}/train`).
//! - Overrides `a.b=value` ([`apply_override`]) must name an existing key (an
//!   unknown one is an error that lists the nearest known keys; `+a.b=value` adds
//!   one) and keep its type (an int where an int was; ints are accepted for
//!   floats; a `null` key takes anything).
//! - YAML aliases (`*name`) and merge keys (`<<`) are refused before anything is
//!   expanded ([`parse_str`]): the reference's configs use none, and aliases are
//!   how a file of a few hundred bytes expands to gigabytes.
pub mod section;

pub use section::Section;
use serde_yaml::Mapping;
/// A config as YAML values (serde_yaml's).
pub use serde_yaml::Value;
use std::path::{Path, PathBuf};

/// What went wrong reading a config or applying an override.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The sandbox refused a path ([`crate::io::access`]).
    #[error(transparent)]
    Denied(#[from] crate::io::access::Denied),

    /// The file could not be read.
    #[error("cannot read {path}: {source}; check the path")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("{path}: not valid YAML: {message}; fix the syntax there (a map is `key: value`, one per line; a list `[a, b]`)")]
    Yaml {
        /// The file or folder.
        path: PathBuf,
        /// The underlying message.
        message: String,
    },
    /// The YAML does not have the shape of a config (defaults, interpolations).
    #[error("{path}: {why}")]
    Structure {
        /// The file or folder.
        path: PathBuf,
        /// Why, in a sentence.
        why: String,
    },
    /// A `key=value` override names no key or has the wrong type.
    #[error("override {arg:?}: {why}")]
    Override {
        /// The override as given.
        arg: String,
        /// Why, in a sentence.
        why: String,
    },
}

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// Reads `path` and composes its `defaults`, then resolves `${…}` interpolations.
pub fn load(path: &Path) -> Result<Value> {
    load_with(path, |_| Ok(()))
}

/// Loads `path` as [`load_with`] does, applying the command line's overrides whose first key
/// segment the config has (or that start with `+`); other `key=value` arguments
/// are the script's own (`args`).
pub fn load_with_overrides(path: &Path, overrides: &[String]) -> Result<Value> {
    load_with(path, |c| {
        for o in overrides {
            let key = o.split('=').next().unwrap_or("");
            let first = key.trim_start_matches('+').split('.').next().unwrap_or("");
            if get(c, first).is_some() || key.starts_with('+') || key.contains('.') {
                apply_override(c, o)?;
            } else {
                // A plain key the config lacks is the script's own (`args`); warn on a near miss.
                let near: Vec<String> =
                    key_paths(c).into_iter().filter(|k| !k.contains('.') && distance(k, key) <= 2).collect();
                if !near.is_empty() {
                    eprintln!(
                        "warning: {key}={}: not a config key (did you mean {}?); passed to the script as args.{key}",
                        o.split_once('=').map_or("", |x| x.1),
                        near.join(" or ")
                    );
                }
            }
        }
        Ok(())
    })
}

/// Reads and composes `path`, lets `edit` apply overrides, then resolves `${…}`
/// (after the overrides, as Hydra does, so `output_path=x` moves `${output_path}/…`).
pub fn load_with(path: &Path, edit: impl FnOnce(&mut Value) -> Result<()>) -> Result<Value> {
    let mut v = compose(path, 0)?;
    edit(&mut v)?;
    resolve(v, path)
}

/// Resolves the `${a.b}` interpolations of a config (`path` labels errors).
pub fn resolve(mut v: Value, path: &Path) -> Result<Value> {
    // Chains (`a: ${b}`, `b: ${c}/x`) resolve in a few rounds; a cycle does not.
    for _ in 0..16 {
        let before = v.clone();
        interpolate(&mut v, &before, path, "")?;
        if v == before {
            if let Some(left) =
                key_paths(&v).into_iter().find(|k| get(&v, k).and_then(Value::as_str).is_some_and(|s| s.contains("${")))
            {
                return Err(ConfigError::Structure {
                    path: path.into(),
                    why: format!("{left}: ${{…}} interpolations form a cycle; give one of them a plain value"),
                });
            }
            return Ok(v);
        }
    }
    Err(ConfigError::Structure {
        path: path.into(),
        why: "${…} interpolations form a cycle; give one of them a plain value".into(),
    })
}

fn read_yaml(path: &Path) -> Result<Value> {
    crate::io::access::check_read(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.into(), source })?;
    parse_str(&text, path)
}

/// Parses config text (one file, `defaults` not composed); `path` labels errors.
/// The top level must be a map; an empty text is an empty map.
pub fn parse_str(text: &str, path: &Path) -> Result<Value> {
    refuse_aliases(text, path)?;
    let v: Value =
        serde_yaml::from_str(text).map_err(|e| ConfigError::Yaml { path: path.into(), message: e.to_string() })?;
    match v {
        Value::Mapping(_) => Ok(v),
        Value::Null => Ok(Value::Mapping(Mapping::new())),
        _ => Err(ConfigError::Structure { path: path.into(), why: "the top level must be a map of keys".into() }),
    }
}

/// Refuses aliases and merge keys by reading the YAML's events, which expand
/// nothing: memory stays that of the text. Syntax errors are left to the parser
/// that follows, whose messages carry the line.
fn refuse_aliases(text: &str, path: &Path) -> Result<()> {
    use yaml_rust2::parser::{Event, Parser};
    let mut events = Parser::new_from_str(text);
    loop {
        let (event, mark) = match events.next_token() {
            Ok(e) => e,
            Err(_) => return Ok(()),
        };
        let why = match &event {
            Event::StreamEnd => return Ok(()),
            Event::Alias(_) => "a YAML alias (*name)",
            Event::Scalar(v, yaml_rust2::scanner::TScalarStyle::Plain, _, _) if v == "<<" => "a YAML merge key (<<)",
            _ => continue,
        };
        return Err(ConfigError::Structure {
            path: path.into(),
            why: format!(
                "line {}: {why}; epic configs do not expand aliases or merges (they let a small file grow without \
                 bound): write the values out, or use `defaults:` to compose files",
                mark.line()
            ),
        });
    }
}

fn compose(path: &Path, depth: usize) -> Result<Value> {
    if depth > 16 {
        return Err(ConfigError::Structure {
            path: path.into(),
            why: "defaults nest more than 16 deep (a cycle?)".into(),
        });
    }
    let mut own = read_yaml(path)?;
    let defaults = match own.as_mapping_mut().and_then(|m| m.remove("defaults")) {
        None => return Ok(own),
        Some(Value::Sequence(d)) => d,
        Some(_) => return Err(ConfigError::Structure { path: path.into(), why: "`defaults` must be a list".into() }),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut merged = Value::Mapping(Mapping::new());
    let mut self_seen = false;
    for entry in defaults {
        match entry {
            Value::String(s) if s == "_self_" => {
                merge(&mut merged, own.clone());
                self_seen = true;
            }
            Value::String(name) => {
                let file = dir.join(format!("{name}.yaml"));
                if !file.is_file() {
                    return Err(ConfigError::Structure {
                        path: path.into(),
                        why: format!("defaults names {name:?}, but {} does not exist", file.display()),
                    });
                }
                merge(&mut merged, compose(&file, depth + 1)?);
            }
            // Group overrides such as `- override hydra/launcher: …` configure Hydra itself.
            _ => {}
        }
    }
    if !self_seen {
        merge(&mut merged, own);
    }
    Ok(merged)
}

/// Merges `over` into `base`: maps key by key, anything else replaced.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// The value at a dotted path.
pub fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, key| cur.as_mapping()?.get(key))
}

/// Longest string `${…}` interpolation may make: references that repeat
/// references (`a: ${b}${b}`, `b: ${c}${c}`, …) grow exponentially.
pub const MAX_VALUE_LEN: usize = 1 << 20;

/// Resolves the `${…}` of `v`, found at the dotted path `at`, one level deep.
fn interpolate(v: &mut Value, root: &Value, file: &Path, at: &str) -> Result<()> {
    let join = |k: &str| if at.is_empty() { k.to_string() } else { format!("{at}.{k}") };
    match v {
        Value::Mapping(m) => m.iter_mut().try_for_each(|(k, x)| {
            let key = k.as_str().map_or_else(|| join("?"), join);
            interpolate(x, root, file, &key)
        }),
        Value::Sequence(s) => {
            s.iter_mut().enumerate().try_for_each(|(i, x)| interpolate(x, root, file, &join(&i.to_string())))
        }
        Value::String(s) if s.contains("${") => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = rest[start..].find('}').ok_or_else(|| ConfigError::Structure {
                    path: file.into(),
                    why: format!("{at}: unterminated ${{…}} in {s:?}; close it with }}"),
                })?;
                let key = &rest[start + 2..start + end];
                match get(root, key) {
                    Some(Value::String(x)) if x.contains("${") => {
                        // Resolved in a later round.
                        out.push_str(&rest[start..start + end + 1]);
                    }
                    Some(Value::String(x)) => out.push_str(x),
                    Some(Value::Number(n)) => out.push_str(&n.to_string()),
                    Some(Value::Bool(b)) => out.push_str(&b.to_string()),
                    _ => {
                        return Err(ConfigError::Structure {
                            path: file.into(),
                            why: format!(
                                "{at}: ${{{key}}} names no key with a plain value; nearest: {}",
                                nearest_keys(root, key).join(", ")
                            ),
                        })
                    }
                }
                rest = &rest[start + end + 1..];
                if out.len() > MAX_VALUE_LEN {
                    return Err(ConfigError::Structure {
                        path: file.into(),
                        why: format!(
                            "{at}: ${{…}} interpolations make it longer than {} KiB; check the references it repeats",
                            MAX_VALUE_LEN >> 10
                        ),
                    });
                }
            }
            out.push_str(rest);
            *s = out;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Every dotted key path of a config, leaves and maps alike.
pub fn key_paths(v: &Value) -> Vec<String> {
    fn walk(v: &Value, prefix: &str, out: &mut Vec<String>) {
        if let Value::Mapping(m) = v {
            for (k, x) in m {
                let Some(k) = k.as_str() else { continue };
                let p = if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
                out.push(p.clone());
                walk(x, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(v, "", &mut out);
    out
}

/// Edit distance between two key paths (for "did you mean").
pub fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut prev = row[0];
        row[0] = i;
        for j in 1..=b.len() {
            let cur = row[j];
            row[j] = (row[j] + 1).min(row[j - 1] + 1).min(prev + usize::from(a[i - 1] != b[j - 1]));
            prev = cur;
        }
    }
    row[b.len()]
}

/// The known keys nearest to `key`, at most three.
pub fn nearest_keys(config: &Value, key: &str) -> Vec<String> {
    let mut keys: Vec<(usize, String)> = key_paths(config).into_iter().map(|k| (distance(&k, key), k)).collect();
    keys.sort();
    keys.into_iter().take(3).map(|(_, k)| k).collect()
}

/// Parses an override's value as YAML types it (`3`, `1e-3`, `true`, `null`, `text`).
pub fn parse_value(s: &str) -> Value {
    serde_yaml::from_str::<Value>(s)
        .ok()
        .filter(|v| !matches!(v, Value::Mapping(_) | Value::Sequence(_)))
        .unwrap_or_else(|| Value::String(s.into()))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an int",
        Value::Number(_) => "a float",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}

/// What to write for `key`, whose config value is `slot`.
fn type_hint(key: &str, slot: &Value) -> String {
    match slot {
        Value::Mapping(m) => match m.keys().find_map(Value::as_str) {
            Some(first) => format!("set the keys under it instead, e.g. {key}.{first}=…"),
            None => format!("add keys under it instead, e.g. +{key}.name=…"),
        },
        Value::Sequence(_) => "overrides cannot set a list; edit the config file".into(),
        scalar => {
            let example = serde_yaml::to_string(scalar).map(|t| t.trim_end().to_string()).unwrap_or_default();
            format!("give {} (e.g. {key}={example}, the config's value)", type_name(scalar))
        }
    }
}

/// Applies one `key=value` (or `+key=value`, which may add a key) to `config`.
pub fn apply_override(config: &mut Value, arg: &str) -> Result<()> {
    let err = |why: String| ConfigError::Override { arg: arg.into(), why };
    let (key, raw) = arg.split_once('=').ok_or_else(|| err("not key=value".into()))?;
    let (add, key) = match key.strip_prefix('+') {
        Some(k) => (true, k),
        None => (false, key),
    };
    let value = parse_value(raw);
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(err("empty key segment".into()));
    }
    let snapshot = config.clone();
    let mut cur = config;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let map = cur.as_mapping_mut().ok_or_else(|| err(format!("{} is not a map", parts[..i].join("."))))?;
        if !map.contains_key(*part) {
            if !add {
                let near = nearest_keys(&snapshot, key);
                return Err(err(format!(
                    "no key {key} in the config; nearest: {}; write +{key}=… to add one",
                    near.join(", ")
                )));
            }
            map.insert(
                Value::String(part.to_string()),
                if last { Value::Null } else { Value::Mapping(Mapping::new()) },
            );
        }
        let slot = map.get_mut(*part).ok_or_else(|| err("lost key".into()))?;
        if last {
            let ok = match (&*slot, &value) {
                (Value::Null, _) | (_, Value::Null) => true,
                (Value::Number(a), Value::Number(b)) => !(a.is_i64() || a.is_u64()) || b.is_i64() || b.is_u64(),
                (Value::Bool(_), Value::Bool(_)) | (Value::String(_), Value::String(_)) => true,
                (Value::String(_), _) => true, // a string key takes "42" as text
                _ => false,
            };
            if !ok {
                return Err(err(format!(
                    "{key} is {}, and {raw:?} is {}; {}",
                    type_name(slot),
                    type_name(&value),
                    type_hint(key, slot)
                )));
            }
            *slot = match (&*slot, value) {
                (Value::String(_), Value::Number(_) | Value::Bool(_)) => Value::String(raw.into()),
                (_, v) => v,
            };
            return Ok(());
        }
        cur = slot;
    }
    Ok(())
}

/// Writes the resolved config as YAML, atomically.
pub fn save(config: &Value, path: &Path) -> crate::Result<()> {
    let text =
        serde_yaml::to_string(config).map_err(|e| crate::Error::invalid(path.display().to_string(), e.to_string()))?;
    crate::io::atomic::write_bytes_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Value {
        serde_yaml::from_str("seed: 42\nmodel: {name: resnet34, custom_weights_path: null, num_classes: 1000}\ntraining: {lr: 0.001}\nout: x").unwrap()
    }

    #[test]
    fn overrides_keep_types_and_name_the_nearest_keys() {
        let mut c = cfg();
        apply_override(&mut c, "model.name=resnet50").unwrap();
        apply_override(&mut c, "training.lr=1e-2").unwrap();
        apply_override(&mut c, "training.lr=1").unwrap(); // an int for a float
        apply_override(&mut c, "model.custom_weights_path=w/resnet.pth").unwrap();
        apply_override(&mut c, "out=42").unwrap(); // text for a string key
        apply_override(&mut c, "+training.weight_decay=0.0").unwrap();
        assert_eq!(get(&c, "model.name").unwrap().as_str(), Some("resnet50"));
        assert_eq!(get(&c, "training.lr").unwrap().as_f64(), Some(1.0));
        assert_eq!(get(&c, "out").unwrap().as_str(), Some("42"));
        assert_eq!(get(&c, "training.weight_decay").unwrap().as_f64(), Some(0.0));
        let e = apply_override(&mut c, "seed=many").unwrap_err().to_string();
        assert!(e.contains("seed is an int, and \"many\" is a string"), "{e}");
        let e = apply_override(&mut c, "model.nmae=x").unwrap_err().to_string();
        assert!(e.contains("no key model.nmae") && e.contains("nearest: model.name"), "{e}");
        let e = apply_override(&mut c, "seed").unwrap_err().to_string();
        assert!(e.contains("not key=value"), "{e}");
    }

    #[test]
    fn defaults_compose_in_hydra_order_and_interpolate() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("base.yaml"),
            "seed: 1\noutput_path: outputs/a\ndataloader: {batch_size: 512}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("train.yaml"),
            "defaults:\n  - _self_\n  - base\nseed: 7\nhydra: {run: {dir: '${output_path}/train'}}\ndataloader: {shuffle: true}\n",
        )
        .unwrap();
        let c = load(&dir.path().join("train.yaml")).unwrap();
        // _self_ first: the base, merged after, wins on shared leaves.
        assert_eq!(get(&c, "seed").unwrap().as_i64(), Some(1));
        assert_eq!(get(&c, "dataloader.batch_size").unwrap().as_i64(), Some(512));
        assert_eq!(get(&c, "dataloader.shuffle").unwrap().as_bool(), Some(true));
        assert_eq!(get(&c, "hydra.run.dir").unwrap().as_str(), Some("outputs/a/train"));
        // Overrides apply before interpolation, and chains resolve.
        std::fs::write(dir.path().join("chain.yaml"), "output_path: a\nrun: '${dir}/x'\ndir: '${output_path}/train'\n")
            .unwrap();
        let c = load_with(&dir.path().join("chain.yaml"), |c| apply_override(c, "output_path=b")).unwrap();
        assert_eq!(get(&c, "run").unwrap().as_str(), Some("b/train/x"));
        std::fs::write(dir.path().join("cycle.yaml"), "a: '${b}'\nb: '${a}'\n").unwrap();
        assert!(load(&dir.path().join("cycle.yaml")).unwrap_err().to_string().contains("cycle"));
        std::fs::write(dir.path().join("bad.yaml"), "seed: [1,\n").unwrap();
        let e = load(&dir.path().join("bad.yaml")).unwrap_err().to_string();
        assert!(e.contains("bad.yaml") && e.contains("not valid YAML"), "{e}");
    }
}
