//! The `Tensor` handle of scripts, tensor files, and small tensor helpers.
use super::{host_device, rt};
use crate::error::Error;
use rhai::plugin::*;
use rhai::{Array, Map};
use rhai::{FLOAT, INT};
use std::fmt;
use tch::{Device, Kind};

/// A libtorch tensor held by a script. Cloning shares the storage, as assigning a
/// tensor does in Python; epic's script functions never modify their inputs.
pub struct ScriptTensor(pub tch::Tensor);

impl Clone for ScriptTensor {
    fn clone(&self) -> Self {
        ScriptTensor(self.0.shallow_clone())
    }
}

impl From<tch::Tensor> for ScriptTensor {
    fn from(t: tch::Tensor) -> Self {
        ScriptTensor(t)
    }
}

impl fmt::Display for ScriptTensor {
    /// `Tensor[24, 16, 5, 5] f32 cpu`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.0;
        if !t.defined() {
            return f.write_str("Tensor(undefined)");
        }
        write!(f, "Tensor{:?} {} {}", t.size(), kind_name(t.kind()), crate::device::device_name(t.device()))
    }
}

impl fmt::Debug for ScriptTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Short dtype names, as scripts see them.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Float => "f32",
        Kind::Double => "f64",
        Kind::Half => "f16",
        Kind::BFloat16 => "bf16",
        Kind::Int64 => "i64",
        Kind::Int => "i32",
        Kind::Int16 => "i16",
        Kind::Int8 => "i8",
        Kind::Uint8 => "u8",
        Kind::Bool => "bool",
        _ => "other",
    }
}

/// A tensor's values as nested Rhai arrays (floats or ints), or a number for 0-d.
pub fn to_dynamic(t: &tch::Tensor) -> crate::Result<Dynamic> {
    let shape = t.size();
    let flat = t.f_to_device(Device::Cpu)?.f_reshape([-1])?;
    let leaves: Vec<Dynamic> = if t.is_floating_point() {
        Vec::<f64>::try_from(flat.f_to_kind(Kind::Double)?)?.into_iter().map(Dynamic::from_float).collect()
    } else if t.kind() == Kind::Bool {
        Vec::<bool>::try_from(flat)?.into_iter().map(Dynamic::from_bool).collect()
    } else {
        Vec::<i64>::try_from(flat.f_to_kind(Kind::Int64)?)?.into_iter().map(Dynamic::from_int).collect()
    };
    fn nest(shape: &[i64], leaves: &mut std::vec::IntoIter<Dynamic>) -> Dynamic {
        match shape.split_first() {
            None => leaves.next().unwrap_or(Dynamic::UNIT),
            Some((&n, rest)) => Dynamic::from_array((0..n).map(|_| nest(rest, leaves)).collect()),
        }
    }
    Ok(nest(&shape, &mut leaves.into_iter()))
}

/// A tensor from nested Rhai arrays of numbers: int64 when every leaf is an int,
/// else f32. Ragged arrays are an error.
pub fn from_dynamic(value: &Dynamic) -> crate::Result<tch::Tensor> {
    fn walk(
        v: &Dynamic,
        depth: usize,
        shape: &mut Vec<i64>,
        leaves: &mut Vec<f64>,
        all_int: &mut bool,
        leaf_depth: &mut Option<usize>,
    ) -> Result<(), String> {
        let mixed = || "ragged nested arrays: numbers and arrays mixed at one level".to_string();
        if v.is_array() {
            if leaf_depth.is_some_and(|d| depth >= d) {
                return Err(mixed());
            }
            let arr = v.read_lock::<Array>().ok_or("unreadable array")?;
            if shape.len() == depth {
                shape.push(arr.len() as i64);
            } else if shape.get(depth) != Some(&(arr.len() as i64)) || shape.len() < depth {
                return Err("ragged nested arrays: every row must have the same length".into());
            }
            for x in arr.iter() {
                walk(x, depth + 1, shape, leaves, all_int, leaf_depth)?;
            }
            return Ok(());
        }
        if depth != shape.len() || leaf_depth.is_some_and(|d| d != depth) {
            return Err(mixed());
        }
        *leaf_depth = Some(depth);
        if let Ok(i) = v.as_int() {
            leaves.push(i as f64);
        } else if let Ok(f) = v.as_float() {
            *all_int = false;
            leaves.push(f);
        } else {
            return Err(format!("expected numbers, found a {}", v.type_name()));
        }
        Ok(())
    }
    let (mut shape, mut leaves, mut all_int) = (Vec::new(), Vec::new(), true);
    walk(value, 0, &mut shape, &mut leaves, &mut all_int, &mut None)
        .map_err(|why| Error::invalid("tensor(array)", why))?;
    let t = tch::Tensor::f_from_slice(&leaves)?.f_reshape(shape)?;
    Ok(t.f_to_kind(if all_int { Kind::Int64 } else { Kind::Float })?)
}

/// A JSON value as Rhai values.
pub fn json_to_dynamic(value: serde_json::Value) -> Dynamic {
    use serde_json::Value;
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Dynamic::from(s),
        Value::Array(a) => Dynamic::from_array(a.into_iter().map(json_to_dynamic).collect()),
        Value::Object(o) => Dynamic::from_map(o.into_iter().map(|(k, v)| (k.into(), json_to_dynamic(v))).collect()),
    }
}

/// Rhai values as JSON; other values (tensors, handles) as their printed form.
pub fn dynamic_to_json(d: &Dynamic) -> serde_json::Value {
    use serde_json::Value;
    if d.is_unit() {
        Value::Null
    } else if let Ok(b) = d.as_bool() {
        Value::Bool(b)
    } else if let Ok(i) = d.as_int() {
        Value::from(i)
    } else if let Ok(f) = d.as_float() {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    } else if let Some(a) = d.read_lock::<Array>() {
        Value::Array(a.iter().map(dynamic_to_json).collect())
    } else if let Some(m) = d.read_lock::<Map>() {
        Value::Object(m.iter().map(|(k, v)| (k.to_string(), dynamic_to_json(v))).collect())
    } else if let Some(h) = d.read_lock::<crate::disentangle::History>() {
        dynamic_to_json(&Dynamic::from_map(super::disentangler::history_map(&h)))
    } else {
        Value::String(d.to_string())
    }
}

/// The shape as a Rhai array of ints.
fn shape_array(t: &tch::Tensor) -> Array {
    t.size().into_iter().map(Dynamic::from_int).collect()
}

/// Integer shape from a Rhai array, checked non-negative.
fn shape_from(shape: &Array, what: &str) -> crate::Result<Vec<i64>> {
    shape
        .iter()
        .map(|d| d.as_int().ok().filter(|&n| n >= 0))
        .collect::<Option<Vec<i64>>>()
        .ok_or_else(|| Error::invalid(what, "the shape must be an array of non-negative ints, like [2, 3]"))
}

/// The script functions for tensors and tensor files (see `epic doc`).
#[export_module]
pub mod api {
    use super::*;

    /// A libtorch tensor: `print(t)` shows its shape, dtype and device.
    pub type Tensor = ScriptTensor;

    /// Reads every tensor of a safetensors file into a map from name to `Tensor`,
    /// on the host's device (`--device`).
    ///
    /// ```rhai
    /// let v = load_tensors("tests/fixtures/reference/vectors.safetensors");
    /// print(v.features);        // Tensor[24, 16, 5, 5] f32 cpu
    /// ```
    #[rhai_fn(return_raw)]
    pub fn load_tensors(ctx: NativeCallContext, path: &str) -> Result<Map, Box<EvalAltResult>> {
        let device = host_device(&ctx);
        let mut map = Map::new();
        for (name, t) in rt(crate::io::load_tensors(std::path::Path::new(path)))? {
            let t = rt(t.f_to_device(device).map_err(Error::from))?;
            map.insert(name.into(), Dynamic::from(ScriptTensor(t)));
        }
        Ok(map)
    }

    /// Writes a map of `Tensor`s to a safetensors file, atomically (a temporary file
    /// renamed into place). Every value must be a `Tensor`.
    ///
    /// ```rhai
    /// save_tensors(#{ u: d.matrix(), a_raw: d.a_raw() }, "outputs/orthogonal.safetensors");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn save_tensors(tensors: Map, path: &str) -> Result<(), Box<EvalAltResult>> {
        let mut named = Vec::with_capacity(tensors.len());
        for (name, value) in &tensors {
            let Some(t) = value.clone().try_cast::<ScriptTensor>() else {
                return Err(format!("save_tensors: value {name:?} is a {}, not a Tensor", value.type_name()).into());
            };
            named.push((name.to_string(), t.0));
        }
        let refs: Vec<(&str, &tch::Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        rt(crate::io::save_tensors(&refs, std::path::Path::new(path)))
    }

    /// A tensor from nested arrays: int64 when all numbers are ints, else f32.
    ///
    /// ```rhai
    /// let rows = tensor([[1.0, 2.0], [3.0, 4.0]]);   // Tensor[2, 2] f32
    /// let idx = tensor(`[0, 2, 1]`);                   // Tensor[3] i64
    /// ```
    #[rhai_fn(return_raw)]
    pub fn tensor(ctx: NativeCallContext, values: Array) -> Result<Tensor, Box<EvalAltResult>> {
        let t = rt(from_dynamic(&Dynamic::from_array(values)))?;
        Ok(ScriptTensor(rt(t.f_to_device(host_device(&ctx)).map_err(Error::from))?))
    }

    /// Standard-normal f32 tensor of the given shape on the host's device; see `seed`.
    ///
    /// ```rhai
    /// seed(7);
    /// let z = randn(`[2, 16, 5, 5]`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn randn(ctx: NativeCallContext, shape: Array) -> Result<Tensor, Box<EvalAltResult>> {
        let shape = rt(shape_from(&shape, "randn"))?;
        rt(tch::Tensor::f_randn(shape, (Kind::Float, host_device(&ctx))).map(ScriptTensor).map_err(Error::from))
    }

    /// Zero f32 tensor of the given shape on the host's device.
    ///
    /// ```rhai
    /// let a = zeros(`[16, 16]`);    // A = 0: U = I
    /// ```
    #[rhai_fn(return_raw)]
    pub fn zeros(ctx: NativeCallContext, shape: Array) -> Result<Tensor, Box<EvalAltResult>> {
        let shape = rt(shape_from(&shape, "zeros"))?;
        rt(tch::Tensor::f_zeros(shape, (Kind::Float, host_device(&ctx))).map(ScriptTensor).map_err(Error::from))
    }

    /// Seeds libtorch's random generators (CPU and CUDA) for `randn` and training.
    ///
    /// ```rhai
    /// seed(42);
    /// ```
    pub fn seed(value: INT) {
        tch::manual_seed(value);
    }

    /// `k` distinct ints drawn from 0..n (libtorch's randperm, so `seed` fixes them).
    ///
    /// ```rhai
    /// seed(cfg.seed);
    /// for i in sample(val.len(), 10) { print(i); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn sample(n: INT, k: INT) -> Result<Array, Box<EvalAltResult>> {
        if n < 0 || k < 0 || k > n {
            return Err(format!("sample: cannot draw {k} distinct values from 0..{n}").into());
        }
        let p = tch::Tensor::f_randperm(n, (Kind::Int64, Device::Cpu)).map_err(|e| e.to_string())?;
        let v = Vec::<i64>::try_from(p.f_narrow(0, 0, k).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        Ok(v.into_iter().map(Dynamic::from_int).collect())
    }

    /// The host's device: `"cpu"` or `"cuda:N"`.
    ///
    /// ```rhai
    /// print(`running on ${device()}`);
    /// ```
    pub fn device(ctx: NativeCallContext) -> String {
        crate::device::device_name(host_device(&ctx))
    }

    /// The shape, as an array of ints.
    ///
    /// ```rhai
    /// let s = v.features.shape();   // `[24, 16, 5, 5]`
    /// ```
    #[rhai_fn(pure)]
    pub fn shape(t: &mut Tensor) -> Array {
        shape_array(&t.0)
    }

    /// The element type: `"f32"`, `"i64"`, ….
    #[rhai_fn(pure)]
    pub fn dtype(t: &mut Tensor) -> String {
        kind_name(t.0.kind()).to_string()
    }

    /// The tensor's device: `"cpu"` or `"cuda:N"`.
    #[rhai_fn(pure, name = "device")]
    pub fn tensor_device(t: &mut Tensor) -> String {
        crate::device::device_name(t.0.device())
    }

    /// A copy on another device: `"cpu"`, `"cuda"`, `"cuda:N"` or `"auto"`.
    ///
    /// ```rhai
    /// let z = v.features.to("cpu");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn to(t: &mut Tensor, device: &str) -> Result<Tensor, Box<EvalAltResult>> {
        let device = rt(crate::device::parse_device(device))?;
        rt(t.0.f_to_device(device).map(ScriptTensor).map_err(Error::from))
    }

    /// The values as nested arrays (floats, ints or bools), or a number for a 0-d tensor.
    ///
    /// ```rhai
    /// let p = top_prototypes(act, 3).to_array();   // [`[4, 17, 2]`, …]
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn to_array(t: &mut Tensor) -> Result<Dynamic, Box<EvalAltResult>> {
        rt(to_dynamic(&t.0))
    }

    /// The rows `rows` (ints) of `t` along its first dimension, in that order.
    ///
    /// ```rhai
    /// let batch = select_rows(v.features, `[0, 1, 2, 3, 4, 5, 6, 7]`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn select_rows(t: Tensor, rows: Array) -> Result<Tensor, Box<EvalAltResult>> {
        let n = t.0.size().first().copied().unwrap_or(0);
        let mut idx = Vec::with_capacity(rows.len());
        for r in &rows {
            let i =
                r.as_int().map_err(|_| format!("select_rows: row indices must be ints, found a {}", r.type_name()))?;
            if i < 0 || i >= n {
                return Err(format!("select_rows: row {i} is out of range 0..{n}").into());
            }
            idx.push(i);
        }
        let idx = rt(tch::Tensor::f_from_slice(&idx).and_then(|i| i.f_to_device(t.0.device())).map_err(Error::from))?;
        rt(t.0.f_index_select(0, &idx).map(ScriptTensor).map_err(Error::from))
    }

    /// Largest |a − b| over all elements, computed in f64 on the CPU; shapes must match.
    ///
    /// ```rhai
    /// let err = max_abs_diff(rotate(v.features, u), v.rotated);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn max_abs_diff(a: Tensor, b: Tensor) -> Result<FLOAT, Box<EvalAltResult>> {
        rt(crate::report::max_abs_diff(&a.0, &b.0))
    }

    /// Matrix product a·b (libtorch `matmul` broadcasting rules).
    ///
    /// ```rhai
    /// let w2 = matmul(v.fc_weight, d.inverse());   // A·U⁻¹
    /// ```
    #[rhai_fn(return_raw)]
    pub fn matmul(a: Tensor, b: Tensor) -> Result<Tensor, Box<EvalAltResult>> {
        a.0.f_matmul(&b.0).map(ScriptTensor).map_err(|e| format!("matmul: cannot multiply {a} by {b}: {e}").into())
    }

    /// Indices of the largest values along `dim` (ties to the first): int64, `dim` removed.
    ///
    /// ```rhai
    /// let predicted = argmax(logits(v.features, v.fc_weight, v.fc_bias), 1);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn argmax(t: Tensor, dim: INT) -> Result<Tensor, Box<EvalAltResult>> {
        let n = t.0.dim() as INT;
        if dim < -n || dim >= n {
            return Err(format!("argmax: dim {dim} is out of range for {t}").into());
        }
        rt(t.0.f_argmax(dim, false).map(ScriptTensor).map_err(Error::from))
    }

    /// Reads a JSON file into Rhai values (maps, arrays, numbers, strings, bools, ()).
    ///
    /// ```rhai
    /// let expected = load_json("tests/fixtures/reference/expected.json");
    /// print(expected.adam.losses);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn load_json(path: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        crate::io::access::check_read(std::path::Path::new(path)).map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{path}: not valid JSON: {e}"))?;
        Ok(json_to_dynamic(value))
    }

    /// Writes Rhai values (maps, arrays, numbers, strings, bools) as pretty JSON,
    /// atomically.
    ///
    /// ```rhai
    /// save_json(#{ purity_before_train: before, purity_after_train: after }, "outputs/purity_after_orthogonal_train.json");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn save_json(value: Dynamic, path: &str) -> Result<(), Box<EvalAltResult>> {
        let json = serde_json::to_string_pretty(&dynamic_to_json(&value)).map_err(|e| format!("save_json: {e}"))?;
        rt(crate::io::atomic::write_bytes_atomic(std::path::Path::new(path), json.as_bytes()))
    }

    /// Mean of all elements, as a float.
    #[rhai_fn(pure, return_raw)]
    pub fn mean(t: &mut Tensor) -> Result<FLOAT, Box<EvalAltResult>> {
        rt(t.0.f_mean(Kind::Double).and_then(|m| m.f_double_value(&[])).map_err(Error::from))
    }

    /// Largest element, as a float.
    #[rhai_fn(pure, return_raw)]
    pub fn max(t: &mut Tensor) -> Result<FLOAT, Box<EvalAltResult>> {
        rt(t.0.f_max().and_then(|m| m.f_double_value(&[])).map_err(Error::from))
    }

    /// Smallest element, as a float.
    #[rhai_fn(pure, return_raw)]
    pub fn min(t: &mut Tensor) -> Result<FLOAT, Box<EvalAltResult>> {
        rt(t.0.f_min().and_then(|m| m.f_double_value(&[])).map_err(Error::from))
    }

    /// `Tensor[24, 16, 5, 5] f32 cpu`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe(t: &mut Tensor) -> String {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ragged_arrays_are_refused_in_any_order() {
        let arr = |v: Vec<Dynamic>| Dynamic::from_array(v);
        let (one, two) = (Dynamic::from_int(1), Dynamic::from_int(2));
        for bad in [
            arr(vec![one.clone(), arr(vec![two.clone()])]),
            arr(vec![arr(vec![one.clone()]), two.clone()]),
            arr(vec![arr(vec![one.clone()]), arr(vec![one.clone(), two.clone()])]),
        ] {
            assert!(from_dynamic(&bad).unwrap_err().to_string().contains("ragged"), "{bad:?}");
        }
        let good = from_dynamic(&arr(vec![arr(vec![one.clone(), two.clone()]), arr(vec![two, one])])).unwrap();
        assert_eq!((good.size(), good.kind()), (vec![2, 2], Kind::Int64));
    }
}
