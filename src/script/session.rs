//! A script session: one engine and one scope kept across many runs, as the
//! cells of a notebook (or a REPL) need them. A variable, a function or a module
//! imported in one run is there in the next:
//!
//! ```no_run
//! let mut s = epic::script::Session::new();
//! s.run(r#"import "pipeline" as pipeline; let d = disentangler("orthogonal", 16);"#).unwrap();
//! let v = s.run("d.channels").unwrap();          // 16
//! let d: epic::script::DisentanglerHandle = s.get("d").unwrap();
//! ```
//!
//! Errors name the run (`cell N`, counting from 1), the line and the column.
use super::{HostOptions, ScriptError};
use rhai::{Dynamic, Engine, Scope, AST};
use std::fmt;
use std::path::{Path, PathBuf};

/// One engine, one scope and the script functions defined so far.
pub struct Session {
    engine: Engine,
    scope: Scope<'static>,
    functions: AST,
    runs: usize,
}

/// What a run evaluated to, with its text as `print` would show it.
#[derive(Clone)]
pub struct ScriptValue {
    /// The first such value.
    pub value: Dynamic,
    /// The value as `print` shows it.
    pub text: String,
}

impl ScriptValue {
    /// True when the run ended in a statement (nothing to show).
    pub fn is_unit(&self) -> bool {
        self.value.is_unit()
    }

    /// The value as `T`, when it is one.
    pub fn cast<T: Clone + 'static>(&self) -> Option<T> {
        self.value.clone().try_cast::<T>()
    }
}

impl fmt::Display for ScriptValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for ScriptValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

impl Session {
    /// A session on the CPU without overrides; `import` looks in the current
    /// folder, `$EPIC_LIB` and the checkout's `scripts/lib`.
    pub fn new() -> Self {
        Session::with_options(HostOptions::default())
    }

    /// A session whose `config(path)` applies `overrides` (`key=value`, as on
    /// `epic run`'s command line).
    pub fn with_overrides<I: IntoIterator<Item = S>, S: Into<String>>(overrides: I) -> Self {
        Session::with_options(HostOptions {
            overrides: overrides.into_iter().map(Into::into).collect(),
            ..Default::default()
        })
    }

    /// A session set up as `epic run` sets up a script (device, overrides, `--lib`).
    pub fn with_options(options: HostOptions) -> Self {
        let mut engine = super::engine(&options);
        engine.set_module_resolver(super::module_resolver(Path::new("session"), &options));
        Session { engine, scope: Scope::new(), functions: AST::empty(), runs: 0 }
    }

    /// Runs `code` in the session's scope and returns its value. Variables,
    /// script functions and `import "x" as y;` lines (one per line) carry over to
    /// later runs. Errors read `cell N:line:column: message`.
    pub fn run(&mut self, code: &str) -> Result<ScriptValue, ScriptError> {
        self.runs += 1;
        let origin = PathBuf::from(format!("cell {}", self.runs));
        let ast = self.engine.compile_with_scope(&self.scope, code).map_err(|e| ScriptError::from_parse(&origin, e))?;
        let ast = self.functions.merge(&ast);
        let value = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &ast)
            .map_err(|e| ScriptError::from_eval(&origin, &self.engine, *e))?;
        self.functions = ast.clone_functions_only();
        for (line, path, alias) in imports(code) {
            let module =
                self.engine.module_resolver().resolve(&self.engine, None, &path, rhai::Position::NONE).map_err(
                    |e| ScriptError {
                        file: origin.clone(),
                        line: Some(line),
                        column: None,
                        message: format!("import \"{path}\": {e}"),
                    },
                )?;
            self.engine.register_static_module(alias, module);
        }
        let text = self.describe(&value);
        Ok(ScriptValue { value, text })
    }

    /// The variable `name` as `T` (a handle such as `epic::Study` for a `Bank`, a `rhai::Map`,
    /// an `i64` …); an error names the variables there are, or the type it has.
    pub fn get<T: Clone + 'static>(&self, name: &str) -> Result<T, ScriptError> {
        let fail = |message: String| ScriptError { file: "session".into(), line: None, column: None, message };
        let Some(v) = self.scope.get(name) else {
            let mut names: Vec<String> = self.scope.iter_raw().map(|(n, _, _)| n.to_string()).collect();
            names.sort();
            names.dedup();
            return Err(fail(format!("no variable `{name}`; the session has: {}", names.join(", "))));
        };
        v.clone().try_cast::<T>().ok_or_else(|| {
            fail(format!(
                "`{name}` is a {}, not a {}",
                self.engine.map_type_name(v.type_name()),
                self.engine.map_type_name(std::any::type_name::<T>())
            ))
        })
    }

    /// Sets the variable `name` to a Rust value (a handle, a number, a map …).
    pub fn set<T: Clone + 'static>(&mut self, name: &str, value: T) {
        self.scope.set_value(name.to_string(), value);
    }

    /// The engine, to attach output and progress callbacks (`epic kernel` routes
    /// `print` to the running cell and polls for interrupts through it).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The names of the session's variables, sorted.
    pub fn variables(&self) -> Vec<String> {
        let mut names: Vec<String> = self.scope.iter_raw().map(|(n, _, _)| n.to_string()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// A variable's value, if the session has it.
    pub fn variable(&self, name: &str) -> Option<&Dynamic> {
        self.scope.get(name)
    }

    /// The script functions defined in earlier runs: (name, parameters, doc comments).
    pub fn functions(&self) -> Vec<(String, Vec<String>, Vec<String>)> {
        self.functions
            .iter_functions()
            .map(|f| {
                (
                    f.name.to_string(),
                    f.params.iter().map(|p| p.to_string()).collect(),
                    f.comments.iter().map(|c| c.to_string()).collect(),
                )
            })
            .collect()
    }

    /// How many runs there have been.
    pub fn runs(&self) -> usize {
        self.runs
    }

    /// `value` as `print` shows it (the registered `to_string`).
    pub fn describe(&self, value: &Dynamic) -> String {
        if value.is_unit() {
            return String::new();
        }
        let mut scope = Scope::new();
        scope.push_dynamic("__epic_value", value.clone());
        self.engine
            .eval_with_scope::<String>(&mut scope, "to_string(__epic_value)")
            .unwrap_or_else(|_| value.to_string())
    }
}

/// The `import "path" as alias;` statements that stand alone on a line, with
/// their line numbers (from 1).
fn imports(code: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (i, line) in code.lines().enumerate() {
        // A trailing `// comment` is not part of the statement.
        let line = line.split_once("//").map_or(line, |(code, _)| code);
        let Some(rest) = line.trim().strip_prefix("import") else { continue };
        let rest = rest.trim_start();
        let Some(rest) = rest.strip_prefix('"') else { continue };
        let Some((path, rest)) = rest.split_once('"') else { continue };
        let Some(alias) = rest.trim_start().strip_prefix("as") else { continue };
        let alias = alias.trim().trim_end_matches(';').trim();
        if !alias.is_empty() && alias.chars().all(|c| c.is_alphanumeric() || c == '_') {
            out.push((i + 1, path.to_string(), alias.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_functions_and_imports_carry_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("twice.rhai"), "fn twice(x) { 2 * x }").unwrap();
        let mut s = Session::with_options(HostOptions { lib_dirs: vec![dir.path().into()], ..Default::default() });
        assert!(s.run("let a = 20; fn add(x, y) { x + y }").unwrap().is_unit());
        s.run("import \"twice\" as t;\nlet b = t::twice(a);").unwrap();
        let v = s.run("add(b, 2)").unwrap();
        assert_eq!(v.cast::<i64>(), Some(42));
        assert_eq!(v.text, "42");
        assert_eq!(s.run("t::twice(5)").unwrap().cast::<i64>(), Some(10));
        assert_eq!(s.get::<i64>("b").unwrap(), 40);
        s.set("c", 7_i64);
        assert_eq!(s.run("c + 1").unwrap().cast::<i64>(), Some(8));
    }

    #[test]
    fn errors_name_the_cell_line_and_column() {
        let mut s = Session::new();
        s.run("let x = 1;").unwrap();
        let e = s.run("let y = x + 1;\nlet z = rotate(y, 3);").unwrap_err();
        assert_eq!((e.file.display().to_string(), e.line, e.column), ("cell 2".to_string(), Some(2), Some(9)));
        assert!(e.to_string().starts_with("cell 2:2:9: rotate cannot take arguments"), "{e}");
        // The variables of a failed run before the error are kept; the session goes on.
        assert_eq!(s.run("y").unwrap().cast::<i64>(), Some(2));
        let e = s.run("let = 3;").unwrap_err();
        assert!(e.to_string().starts_with("cell 4:1:"), "{e}");
        let e = s.get::<i64>("nope").unwrap_err();
        assert!(e.message.contains("no variable `nope`") && e.message.contains("x, y"), "{e}");
        let e = s.get::<String>("x").unwrap_err();
        assert!(e.message.contains("`x` is a i64"), "{e}");
    }

    #[test]
    fn import_lines_are_found_with_their_line_numbers() {
        let code = "let a = 1;\n  import \"pipeline\" as pipeline;\nimport \"x/y\" as  y_2\nimport f as g;\n\
                    import \"fashion\" as fashion;   // scripts/lib/fashion.rhai";
        assert_eq!(
            imports(code),
            vec![
                (2, "pipeline".to_string(), "pipeline".to_string()),
                (3, "x/y".to_string(), "y_2".to_string()),
                (5, "fashion".to_string(), "fashion".to_string())
            ]
        );
    }
}
