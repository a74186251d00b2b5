//! `key=value` command-line arguments, as the map a script sees as `args`.
//!
//! Dotted keys nest (`model.name=resnet50` → `args.model.name`). Values are typed
//! by the YAML parser that types config overrides: integers, floats, `true`/`false`,
//! `null`; anything else is a string (quote it to keep digits as text: `tag="'42'"`).
use rhai::{Dynamic, Map};

/// Parses `key=value` arguments into a nested map.
///
/// Errors on an argument without `=`, an empty key segment, or a key used both as
/// a value and as a parent of other keys.
pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<Map, String> {
    let mut map = Map::new();
    for arg in args {
        let arg = arg.as_ref();
        let Some((key, value)) = arg.split_once('=') else {
            return Err(format!("argument {arg:?} is not key=value; write for example dir=outputs"));
        };
        let path: Vec<&str> = key.trim().split('.').collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(format!("argument {arg:?}: empty key segment in {key:?}"));
        }
        insert(&mut map, &path, parse_value(value), key)?;
    }
    Ok(map)
}

fn insert(map: &mut Map, path: &[&str], value: Dynamic, key: &str) -> Result<(), String> {
    let Some((head, rest)) = path.split_first() else {
        return Err(format!("{key}: empty key"));
    };
    if rest.is_empty() {
        if map.get(*head).is_some_and(|v| v.is_map()) {
            return Err(format!("{key} is given a value, but other arguments set keys under it"));
        }
        map.insert((*head).into(), value);
        return Ok(());
    }
    let entry = map.entry((*head).into()).or_insert_with(|| Dynamic::from_map(Map::new()));
    let Some(mut sub) = entry.write_lock::<Map>() else {
        return Err(format!("{key}: {head} already has a value, so it cannot hold keys"));
    };
    insert(&mut sub, rest, value, key)
}

/// Types a value as YAML does (the same parser as config overrides): int,
/// float, bool, null (unit), else string.
pub fn parse_value(s: &str) -> Dynamic {
    super::config::to_dynamic(&crate::config::parse_value(s.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_typed_and_keys_nest() {
        let m = parse_args(&["dir=out", "n=3", "lr=1e-3", "model.name=resnet50", "model.pretrained=true", "tag='42'"])
            .unwrap();
        assert_eq!(m["dir"].clone().into_string().unwrap(), "out");
        assert_eq!(m["n"].as_int().unwrap(), 3);
        assert_eq!(m["lr"].as_float().unwrap(), 1e-3);
        assert_eq!(m["tag"].clone().into_string().unwrap(), "42");
        let model = m["model"].read_lock::<Map>().unwrap();
        assert_eq!(model["name"].clone().into_string().unwrap(), "resnet50");
        assert!(model["pretrained"].as_bool().unwrap());
    }

    #[test]
    fn bad_arguments_say_what_to_write() {
        assert!(parse_args(&["dir"]).unwrap_err().contains("not key=value"));
        assert!(parse_args(&["a..b=1"]).unwrap_err().contains("empty key segment"));
        assert!(parse_args(&["a=1", "a.b=2"]).unwrap_err().contains("already has a value"));
        assert!(parse_args(&["a.b=2", "a=1"]).unwrap_err().contains("other arguments set keys under it"));
        // "nan" and "inf" stay strings: no digits.
        assert!(parse_value("nan").is_string());
    }
}
