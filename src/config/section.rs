//! Typed reading of a config: a [`Section`] is a view of one map of the YAML
//! tree at a dotted path, whose getters return a key's value as a Rust type or
//! its default, and name the full key (`training.lr`) when the value has the
//! wrong type. Every typed option's `from_config` reads its keys through it.
use serde_yaml::Value;

/// The map at `path` in a config (an absent or `null` section reads as empty).
#[derive(Clone)]
pub struct Section<'a> {
    map: Option<&'a serde_yaml::Mapping>,
    path: String,
}

/// A YAML value's type in words, for messages ("a string", "a map").
pub fn type_name(v: &Value) -> &'static str {
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

fn error(key: String, why: String) -> crate::Error {
    crate::Error::Config { key, why }
}

impl<'a> Section<'a> {
    /// The whole config (the root map); `path` is "" and keys are named bare.
    pub fn root(config: &'a Value) -> crate::Result<Section<'a>> {
        Section::at(config, "")
    }

    /// `value` read as the section at `path` (used in messages): a map, or `null`.
    pub fn at(value: &'a Value, path: &str) -> crate::Result<Section<'a>> {
        let path = path.to_string();
        match value {
            Value::Mapping(m) => Ok(Section { map: Some(m), path }),
            Value::Null => Ok(Section { map: None, path }),
            other => Err(error(path, format!("must be a map, got {}", type_name(other)))),
        }
    }

    /// The dotted path of `key` in this section.
    pub fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of the first of `keys` present and not `null`.
    pub fn get(&self, keys: &[&str]) -> Option<&'a Value> {
        let map = self.map?;
        keys.iter().find_map(|k| map.get(*k)).filter(|v| !v.is_null())
    }

    /// The sub-section `key` (empty when absent or `null`).
    pub fn section(&self, key: &str) -> crate::Result<Section<'a>> {
        let path = self.key(key);
        match self.get(&[key]) {
            None => Ok(Section { map: None, path }),
            Some(v) => Section::at(v, &path),
        }
    }

    /// This section's dotted path ("" at the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether `key` is present with the value `null` (for keys where an
    /// explicit `null` means "none", unlike an absent key).
    pub fn is_null(&self, key: &str) -> bool {
        self.map.and_then(|m| m.get(key)).is_some_and(Value::is_null)
    }

    /// An int, or `default` when absent.
    pub fn int(&self, keys: &[&str], default: i64) -> crate::Result<i64> {
        match self.get(keys) {
            None => Ok(default),
            Some(v) => {
                v.as_i64().ok_or_else(|| error(self.key(keys[0]), format!("expected an int, got {}", type_name(v))))
            }
        }
    }

    /// An int that must be at least `min`, or `default` when absent.
    pub fn int_at_least(&self, keys: &[&str], default: i64, min: i64) -> crate::Result<i64> {
        let v = self.int(keys, default)?;
        if v < min {
            return Err(error(self.key(keys[0]), format!("{v} must be >= {min}")));
        }
        Ok(v)
    }

    /// A number (an int counts), or `default` when absent.
    pub fn float(&self, keys: &[&str], default: f64) -> crate::Result<f64> {
        match self.get(keys) {
            None => Ok(default),
            Some(v) => {
                v.as_f64().ok_or_else(|| error(self.key(keys[0]), format!("expected a number, got {}", type_name(v))))
            }
        }
    }

    /// A bool, or `default` when absent.
    pub fn bool(&self, keys: &[&str], default: bool) -> crate::Result<bool> {
        match self.get(keys) {
            None => Ok(default),
            Some(v) => {
                v.as_bool().ok_or_else(|| error(self.key(keys[0]), format!("expected a bool, got {}", type_name(v))))
            }
        }
    }

    /// A string (numbers and bools in their YAML spelling), or `None` when absent.
    pub fn string(&self, keys: &[&str]) -> crate::Result<Option<String>> {
        match self.get(keys) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(v) => Err(error(self.key(keys[0]), format!("expected a string, got {}", type_name(v)))),
        }
    }

    /// The error for `key` of this section, saying `why`.
    pub fn invalid(&self, key: &str, why: impl Into<String>) -> crate::Error {
        error(self.key(key), why.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getters_default_when_absent_and_name_the_full_key() {
        let v: Value =
            serde_yaml::from_str("training: {lr: fast, epochs: 2, on: true}\nseed: 1\nnothing: null").unwrap();
        let root = Section::root(&v).unwrap();
        assert_eq!(root.int(&["seed"], 0).unwrap(), 1);
        assert_eq!(root.int(&["absent"], 7).unwrap(), 7);
        assert_eq!(root.int(&["nothing"], 7).unwrap(), 7);
        let t = root.section("training").unwrap();
        assert_eq!(t.float(&["epochs"], 0.0).unwrap(), 2.0);
        assert!(t.bool(&["on"], false).unwrap());
        let e = t.float(&["lr"], 0.0).unwrap_err().to_string();
        assert_eq!(e, "config key training.lr: expected a number, got a string");
        let e = root.section("seed").err().unwrap().to_string();
        assert_eq!(e, "config key seed: must be a map, got an int");
        let e = t.int_at_least(&["epochs"], 0, 3).unwrap_err().to_string();
        assert_eq!(e, "config key training.epochs: 2 must be >= 3");
    }
}
