//! A restricted unpickler for PyTorch checkpoints: it rebuilds state dicts and
//! never executes arbitrary pickle.
//!
//! Python's pickle is a small stack machine whose `GLOBAL` + `REDUCE` opcodes call
//! any importable function, so loading an untrusted `.pth` with `pickle.load` runs
//! whatever the file says. This reader interprets the opcodes itself and accepts
//! only the globals a state dict needs:
//! - `collections.OrderedDict` (the state dict itself);
//! - `torch._utils._rebuild_tensor_v2` and `torch._utils._rebuild_parameter`;
//! - the typed storages `torch.FloatStorage`, `torch.HalfStorage`, … as storage
//!   types inside persistent ids.
//!
//! Any other global is refused with an error that names it. Storages are
//! referenced through persistent ids (`BINPERSID`); the container format
//! ([`super::pth`]) supplies their bytes.
use std::collections::HashMap;
use std::fmt;

/// Why a pickle was refused or could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PickleError {
    /// The pickle calls something other than a tensor rebuild.
    #[error("refused: the pickle calls {0}, which is not a tensor rebuild; epic loads only state dicts of tensors (never arbitrary pickle): if you trust the file, re-save its weights with torch.save(model.state_dict(), path)")]
    Refused(String),
    /// An opcode epic does not interpret.
    #[error("unsupported pickle opcode 0x{op:02x} at byte {at}")]
    Opcode {
        /// The opcode.
        op: u8,
        /// Where: the index or byte offset.
        at: usize,
    },
    /// The stream ends early or its structure is inconsistent.
    #[error("malformed pickle at byte {at}: {why}")]
    Malformed {
        /// Where: the index or byte offset.
        at: usize,
        /// Why, in a sentence.
        why: String,
    },
}

/// A storage referenced by a persistent id: `('storage', torch.FloatStorage, key, location, numel)`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    /// Element type, from the storage type's name.
    pub kind: tch::Kind,
    /// The key under which the container keeps the bytes.
    pub key: String,
    /// Number of elements.
    pub numel: i64,
}

/// A tensor to rebuild: a strided view into a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

/// A decoded pickle value. Only what state dicts and checkpoints contain.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too large for i64, as little-endian two's-complement bytes.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// A dict or OrderedDict, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// An allowed global, before it is called.
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// The globals epic accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    StorageType(tch::Kind),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Tensor(t) => write!(f, "tensor{:?}", t.size),
            other => write!(f, "{other:?}"),
        }
    }
}

fn storage_kind(name: &str) -> Option<tch::Kind> {
    use tch::Kind::*;
    Some(match name {
        "FloatStorage" => Float,
        "DoubleStorage" => Double,
        "HalfStorage" => Half,
        "BFloat16Storage" => BFloat16,
        "LongStorage" => Int64,
        "IntStorage" => Int,
        "ShortStorage" => Int16,
        "CharStorage" => Int8,
        "ByteStorage" => Uint8,
        "BoolStorage" => Bool,
        _ => return None,
    })
}

fn resolve_global(module: &str, name: &str) -> Result<Global, PickleError> {
    match (module, name) {
        ("collections", "OrderedDict") => Ok(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Ok(Global::RebuildParameter),
        ("torch", s) => {
            storage_kind(s).map(Global::StorageType).ok_or_else(|| PickleError::Refused(format!("{module}.{name}")))
        }
        _ => Err(PickleError::Refused(format!("{module}.{name}"))),
    }
}

/// How deep values may nest: a state dict nests 4 levels, a checkpoint a few more.
/// Deeper values are refused, so that no recursion over them (drop, clone,
/// formatting) can overflow the stack.
pub const MAX_DEPTH: u32 = 100;

/// How many values (and 64-byte blocks of strings) memo copies may total. A memo
/// entry is a copy, so a pickle that memoises and fetches one big value over and
/// over would otherwise take quadratic time; real checkpoints copy a few thousand.
pub const MEMO_BUDGET: usize = 1 << 22;

/// Reads one pickle from `data`; returns the value and the number of bytes consumed.
pub fn read(data: &[u8]) -> Result<(Value, usize), PickleError> {
    Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        depths: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        memo_work: 0,
    }
    .run()
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// The nesting depth of each stack value (0 for a leaf).
    depths: Vec<u32>,
    marks: Vec<usize>,
    memo: HashMap<u32, (Value, u32)>,
    /// Values copied into and out of the memo so far (see [`MEMO_BUDGET`]).
    memo_work: usize,
}

/// The cost of copying `v` (values, plus a value per 64 bytes of text), or `None`
/// beyond `cap`. Iterative: `v` may be as deep as [`MAX_DEPTH`].
fn copy_cost(v: &Value, cap: usize) -> Option<usize> {
    let mut todo = vec![v];
    let mut n = 0usize;
    while let Some(x) = todo.pop() {
        n += 1;
        match x {
            Value::Tuple(items) | Value::List(items) => todo.extend(items),
            Value::Dict(pairs) => pairs.iter().for_each(|(k, v)| todo.extend([k, v])),
            Value::Str(t) => n += t.len() / 64,
            Value::Bytes(b) | Value::BigInt(b) => n += b.len() / 64,
            _ => {}
        }
        if n > cap {
            return None;
        }
    }
    Some(n)
}

impl Machine<'_> {
    fn bad(&self, why: impl Into<String>) -> PickleError {
        PickleError::Malformed { at: self.pos, why: why.into() }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        if self.data.len() - self.pos < n {
            return Err(self.bad(format!("needs {n} more bytes, the file ends (truncated?)")));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.bad("unterminated line; the file ends (truncated?)"))?;
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(s)
    }

    fn string(&mut self, n: usize) -> Result<Value, PickleError> {
        let bytes = self.take(n)?.to_vec();
        String::from_utf8(bytes).map(Value::Str).map_err(|_| self.bad("string is not UTF-8"))
    }

    /// Pushes a leaf.
    fn push(&mut self, v: Value) {
        self.stack.push(v);
        self.depths.push(0);
    }

    /// Pushes a value that nests `depth` levels.
    fn push_at(&mut self, v: Value, depth: u32) -> Result<(), PickleError> {
        self.check_depth(depth)?;
        self.stack.push(v);
        self.depths.push(depth);
        Ok(())
    }

    fn check_depth(&self, depth: u32) -> Result<(), PickleError> {
        if depth > MAX_DEPTH {
            return Err(self.bad(format!("values nest more than {MAX_DEPTH} levels deep; a state dict nests 4")));
        }
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        self.pop_at().map(|(v, _)| v)
    }

    fn pop_at(&mut self) -> Result<(Value, u32), PickleError> {
        let v = self.stack.pop().ok_or_else(|| self.bad("stack underflow"))?;
        Ok((v, self.depths.pop().unwrap_or(0)))
    }

    /// The values above the last MARK, and the deepest of them.
    fn pop_mark(&mut self) -> Result<(Vec<Value>, u32), PickleError> {
        let mark = self.marks.pop().ok_or_else(|| self.bad("no MARK on the stack"))?;
        if mark > self.stack.len() {
            return Err(self.bad("MARK above the stack"));
        }
        let depth = self.depths.split_off(mark).into_iter().max().unwrap_or(0);
        Ok((self.stack.split_off(mark), depth))
    }

    /// The top value now holds a child of depth `child`.
    fn raise_top(&mut self, child: u32) -> Result<(), PickleError> {
        self.check_depth(child + 1)?;
        if let Some(d) = self.depths.last_mut() {
            *d = (*d).max(child + 1);
        }
        Ok(())
    }

    /// Charges a memo copy of `v` against [`MEMO_BUDGET`] (before copying it).
    fn charge(&self, v: &Value) -> Result<usize, PickleError> {
        copy_cost(v, MEMO_BUDGET.saturating_sub(self.memo_work)).ok_or_else(|| {
            self.bad(format!(
                "memo copies exceed {MEMO_BUDGET} values; a checkpoint needs a few thousand (a pickle bomb?)"
            ))
        })
    }

    /// Memoises the top value under `i`.
    fn memo_put(&mut self, i: u32) -> Result<(), PickleError> {
        let top = self.stack.last().ok_or_else(|| self.bad("MEMOIZE on an empty stack"))?;
        self.memo_work += self.charge(top)?;
        let entry = (top.clone(), self.depths.last().copied().unwrap_or(0));
        self.memo.insert(i, entry);
        Ok(())
    }

    /// Pushes a copy of memo entry `i`.
    fn memo_get(&mut self, i: u32) -> Result<(), PickleError> {
        let (v, depth) = self.memo.get(&i).ok_or_else(|| self.bad(format!("memo {i} is not set")))?;
        self.memo_work += self.charge(v)?;
        let (v, depth) = (v.clone(), *depth);
        self.push_at(v, depth)
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        let at = self.pos;
        self.stack.last_mut().ok_or(PickleError::Malformed { at, why: "empty stack".into() })
    }

    fn run(mut self) -> Result<(Value, usize), PickleError> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME: length only
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok((v, self.pos));
                }
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.push(Value::Int(v as i64));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v as i64));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(v as i64));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let bytes = self.take(n)?.to_vec();
                    self.push(long(&bytes));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.array()?);
                    self.push(Value::Float(v));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let v = self.string(n)?;
                    self.push(v);
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let v = self.string(n)?;
                    self.push(v);
                }
                b'T' => {
                    let n = self.u32()? as usize;
                    let v = self.string(n)?;
                    self.push(v);
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let v = self.string(n)?;
                    self.push(v);
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let v = self.take(n)?.to_vec();
                    self.push(Value::Bytes(v));
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let v = self.take(n)?.to_vec();
                    self.push(Value::Bytes(v));
                }
                b')' => self.push_at(Value::Tuple(Vec::new()), 1)?,
                b']' => self.push_at(Value::List(Vec::new()), 1)?,
                b'}' => self.push_at(Value::Dict(Vec::new()), 1)?,
                b't' => {
                    let (items, depth) = self.pop_mark()?;
                    self.push_at(Value::Tuple(items), depth + 1)?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(self.bad("stack underflow in TUPLEn"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    let depth = self.depths.split_off(self.depths.len() - n).into_iter().max().unwrap_or(0);
                    self.push_at(Value::Tuple(items), depth + 1)?;
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    self.memo_put(i)?;
                }
                b'h' | b'j' => {
                    let i = if op == b'h' { self.u8()? as u32 } else { self.u32()? };
                    self.memo_get(i)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global(resolve_global(&module, &name)?));
                }
                0x93 => {
                    // STACK_GLOBAL (protocol 4): module and name from the stack.
                    let (name, module) = (self.pop()?, self.pop()?);
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.push(Value::Global(resolve_global(&m, &n)?)),
                        _ => return Err(self.bad("STACK_GLOBAL needs two strings")),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = self.persistent(pid)?;
                    self.push(Value::Storage(storage));
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let v = self.call(func, args)?;
                    // An empty dict or a tensor reference: one level.
                    self.push_at(v, 1)?;
                }
                b'b' => {
                    // BUILD: sets an object's state. State dicts carry `_metadata`
                    // (module versions) this way; epic does not need it.
                    let _state = self.pop()?;
                    self.top()?;
                }
                b'a' => {
                    let (v, depth) = self.pop_at()?;
                    self.raise_top(depth)?;
                    match self.top()? {
                        Value::List(l) => l.push(v),
                        _ => return Err(PickleError::Malformed { at, why: "APPEND to a non-list".into() }),
                    }
                }
                b'e' => {
                    let (items, depth) = self.pop_mark()?;
                    self.raise_top(depth)?;
                    match self.top()? {
                        Value::List(l) => l.extend(items),
                        _ => return Err(PickleError::Malformed { at, why: "APPENDS to a non-list".into() }),
                    }
                }
                b's' => {
                    let (v, dv) = self.pop_at()?;
                    let (k, dk) = self.pop_at()?;
                    self.raise_top(dv.max(dk))?;
                    match self.top()? {
                        Value::Dict(d) => d.push((k, v)),
                        _ => return Err(PickleError::Malformed { at, why: "SETITEM on a non-dict".into() }),
                    }
                }
                b'u' => {
                    let (items, depth) = self.pop_mark()?;
                    self.raise_top(depth)?;
                    if items.len() % 2 != 0 {
                        return Err(self.bad("SETITEMS with an odd number of items"));
                    }
                    let mut it = items.into_iter();
                    let mut pairs = Vec::new();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    match self.top()? {
                        Value::Dict(d) => d.extend(pairs),
                        _ => return Err(PickleError::Malformed { at, why: "SETITEMS on a non-dict".into() }),
                    }
                }
                0x81 | 0x92 | b'i' | b'o' => {
                    return Err(PickleError::Refused("an object constructor (NEWOBJ/INST/OBJ)".into()));
                }
                _ => return Err(PickleError::Opcode { op, at }),
            }
        }
    }

    /// `('storage', torch.XStorage, key, location, numel[, view_metadata])` → storage.
    fn persistent(&self, pid: Value) -> Result<StorageRef, PickleError> {
        let Value::Tuple(items) = pid else {
            return Err(self.bad("persistent id is not a tuple"));
        };
        match items.as_slice() {
            [Value::Str(tag), Value::Global(Global::StorageType(kind)), key, _location, Value::Int(numel), ..]
                if tag == "storage" && *numel >= 0 =>
            {
                let key = match key {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    _ => return Err(self.bad("storage key is neither a string nor an int")),
                };
                Ok(StorageRef { kind: *kind, key, numel: *numel })
            }
            _ => Err(self.bad(format!("unexpected persistent id {items:?}"))),
        }
    }

    fn call(&self, func: Value, args: Value) -> Result<Value, PickleError> {
        let Value::Tuple(args) = args else {
            return Err(self.bad("REDUCE arguments are not a tuple"));
        };
        let Value::Global(g) = func else {
            return Err(self.bad("REDUCE on something that is not a function"));
        };
        match g {
            Global::OrderedDict => Ok(Value::Dict(Vec::new())),
            Global::RebuildTensorV2 => match args.as_slice() {
                [Value::Storage(s), Value::Int(offset), Value::Tuple(size), Value::Tuple(stride), ..] => {
                    let ints = |v: &[Value]| -> Result<Vec<i64>, PickleError> {
                        v.iter()
                            .map(|x| match x {
                                Value::Int(i) => Ok(*i),
                                _ => Err(self.bad("tensor size/stride is not all ints")),
                            })
                            .collect()
                    };
                    Ok(Value::Tensor(TensorRef {
                        storage: s.clone(),
                        offset: *offset,
                        size: ints(size)?,
                        stride: ints(stride)?,
                    }))
                }
                _ => Err(self.bad("unexpected arguments to _rebuild_tensor_v2")),
            },
            Global::RebuildParameter => match args.into_iter().next() {
                Some(t @ Value::Tensor(_)) => Ok(t),
                _ => Err(self.bad("_rebuild_parameter without a tensor")),
            },
            Global::StorageType(_) => Err(PickleError::Refused("a storage constructor".into())),
        }
    }
}

/// LONG1 payload (little-endian two's complement) as an int when it fits.
fn long(bytes: &[u8]) -> Value {
    if bytes.len() <= 8 {
        let fill = if bytes.last().is_some_and(|b| b & 0x80 != 0) { 0xff } else { 0 };
        let mut buf = [fill; 8];
        buf[..bytes.len()].copy_from_slice(bytes);
        Value::Int(i64::from_le_bytes(buf))
    } else {
        Value::BigInt(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_small_dict_with_memo_and_ints() {
        // pickle.dumps({'a': 1, 'b': [2, 300, -5], 'c': (True, None)}, protocol=2)
        let p = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02]q\x03(K\x02M,\x01J\xfb\xff\xff\xffeX\x01\x00\x00\x00cq\x04\x88N\x86q\x05u.";
        let (v, n) = read(p).unwrap();
        assert_eq!(n, p.len());
        let Value::Dict(d) = v else { panic!("{v:?}") };
        assert_eq!(d[0], (Value::Str("a".into()), Value::Int(1)));
        assert_eq!(d[1].1, Value::List(vec![Value::Int(2), Value::Int(300), Value::Int(-5)]));
        assert_eq!(d[2].1, Value::Tuple(vec![Value::Bool(true), Value::None]));
    }

    #[test]
    fn refuses_os_system() {
        // pickle.dumps of an object whose __reduce__ returns (os.system, ('echo hi',)), protocol 2
        let p = b"\x80\x02cposix\nsystem\nq\x00X\x07\x00\x00\x00echo hiq\x01\x85q\x02Rq\x03.";
        let e = read(p).unwrap_err();
        assert_eq!(e, PickleError::Refused("posix.system".into()));
        assert!(e.to_string().contains("never arbitrary pickle"));
    }

    #[test]
    fn truncated_streams_are_malformed_not_panics() {
        let p = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02]q\x03(K\x02M,\x01J\xfb\xff\xff\xffeX\x01\x00\x00\x00cq\x04\x88N\x86q\x05u.";
        for cut in 0..p.len() {
            assert!(read(&p[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_negative_storage_size_is_malformed() {
        // BINPERSID of ('storage', torch.FloatStorage, '0', 'cpu', -5)
        let p = b"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ\xfb\xff\xff\xfftQ.";
        assert!(matches!(read(p), Err(PickleError::Malformed { .. })), "{:?}", read(p));
    }

    #[test]
    fn long1_decodes_signed_and_big_values() {
        assert_eq!(long(&[0xff]), Value::Int(-1));
        assert_eq!(long(&[0x00, 0x01]), Value::Int(256));
        assert!(matches!(long(&[1; 10]), Value::BigInt(_)));
    }
}
