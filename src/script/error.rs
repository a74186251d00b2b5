//! Errors from running a script, with the script's file, line and column.
use rhai::{Engine, EvalAltResult, ParseError, Position};
use std::fmt;
use std::path::{Path, PathBuf};

/// A script failed: where (file, line, column, when known) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptError {
    /// The script file.
    pub file: PathBuf,
    /// The line, when known.
    pub line: Option<usize>,
    /// The column, when known.
    pub column: Option<usize>,
    /// The underlying message.
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScriptError {}

impl ScriptError {
    pub(crate) fn io(path: &Path, e: std::io::Error) -> Self {
        ScriptError {
            file: path.into(),
            line: None,
            column: None,
            message: format!("cannot read the script: {e}; check the path"),
        }
    }

    fn at(file: &Path, pos: Position, message: String) -> Self {
        ScriptError { file: file.into(), line: pos.line(), column: pos.position(), message }
    }

    pub(crate) fn from_parse(file: &Path, e: ParseError) -> Self {
        let pos = e.position();
        Self::at(file, pos, format!("syntax error: {}", e.err_type()))
    }

    /// Flattens Rhai's nested "in call to function …" wrappers into one message at
    /// the position of the innermost call, and says what a mistyped call expected.
    pub(crate) fn from_eval(file: &Path, engine: &Engine, e: EvalAltResult) -> Self {
        let mut pos = e.position();
        let mut err = &e;
        let mut calls = Vec::new();
        let mut source = None;
        loop {
            match err {
                EvalAltResult::ErrorInFunctionCall(name, src, inner, p) => {
                    calls.push(name.clone());
                    if !p.is_none() {
                        pos = *p;
                    }
                    // A function of an imported module: positions inside it are its file's.
                    if !src.is_empty() {
                        source = Some(src.clone());
                    }
                    err = inner;
                }
                EvalAltResult::ErrorInModule(src, inner, p) => {
                    if !p.is_none() {
                        pos = *p;
                    }
                    if !src.is_empty() {
                        source = Some(src.clone());
                    }
                    err = inner;
                }
                _ => break,
            }
        }
        if !err.position().is_none() {
            pos = err.position();
        }
        let mut message = match err {
            EvalAltResult::ErrorFunctionNotFound(sig, _) => not_found(engine, sig),
            EvalAltResult::ErrorTooManyOperations(_) => format!(
                "the script took more than {} Rhai operations, the sandbox's limit (a runaway loop?); \
                 if it needs more, run again with --max-operations N",
                engine.max_operations()
            ),
            EvalAltResult::ErrorStackOverflow(_) => format!(
                "the script's calls nest deeper than {} levels, the sandbox's limit (runaway recursion?)",
                engine.max_call_levels()
            ),
            EvalAltResult::ErrorDataTooLarge(what, _) => {
                format!(
                    "{what} grew past the sandbox's limit (a string of 16 MiB, an array of 1 M items, a map of 65 536)"
                )
            }
            EvalAltResult::ErrorRuntime(value, _) => match value.clone().into_string() {
                Ok(s) => s,
                Err(_) => value.to_string(),
            },
            other => {
                let mut s = other.to_string();
                if let Some(i) = s.rfind(" (line ") {
                    s.truncate(i);
                }
                s
            }
        };
        if let Some(f) = calls.first().filter(|f| !message.contains(f.as_str())) {
            message = format!("in {f}(): {message}");
        }
        match source {
            Some(src) if !err.position().is_none() => {
                let module = if Path::new(&src).extension().is_some() { src } else { format!("{src}.rhai") };
                Self::at(Path::new(&module), pos, format!("{message} (imported by {})", file.display()))
            }
            _ => Self::at(file, pos, message),
        }
    }
}

/// "function not found" with the signatures that do exist under that name.
fn not_found(engine: &Engine, sig: &str) -> String {
    let name = sig.split(['(', ' ']).next().unwrap_or(sig).trim();
    // Rhai spells a string argument as all the types it could bind to.
    let given = sig.strip_prefix(name).unwrap_or("").trim().replace("&str | ImmutableString | String", "string");
    let known: Vec<String> =
        engine.gen_fn_signatures(false).into_iter().filter(|s| s.split('(').next() == Some(name)).collect();
    if known.is_empty() {
        format!("no function {name}{given}; `epic doc` lists every function")
    } else {
        format!(
            "{name} cannot take arguments {given}; expected {}",
            known.iter().map(|s| format!("`{}`", super::docs::clean_signature(s))).collect::<Vec<_>>().join(" or ")
        )
    }
}
