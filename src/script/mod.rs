//! The Rhai face of epic: the engine that runs experiment scripts, with every EPIC
//! primitive registered as a typed, documented function.
//!
//! This module is glue. Each binding converts Rhai values to library types, calls
//! one library function, and converts the result back; the logic lives in the
//! library modules (mostly as methods of [`crate::Study`]). Bindings are grouped
//! by handle, one `#[export_module]` each:
//! - `tensor`: the `Tensor` handle, tensor files, small tensor helpers;
//! - `math`: rotation, activations, prototypes, purity, head, explaining channels;
//! - `model`: the `Model` handle: loading, transforms, prediction;
//! - `dataset`: the `Dataset` handle: image folders, Fashion-MNIST, pictures;
//! - `study`: the `Bank` handle (a [`crate::Study`]): extraction, heads, purity;
//! - `disentangler`: `Disentangler`, `Adam` and `History` handles, schedules, training;
//! - `explanation`: the `Explanation` handle;
//! - `figures`: prototype grids, purity plots and tables;
//! - `config`: configs; [`bench`]: measuring a run;
//! - `session`: one engine and scope across many runs (notebook cells).
//!
//! Library errors become Rhai runtime errors through one conversion (`?` on an
//! [`crate::Error`]); the engine attaches the script's line and column, and
//! [`ScriptError`] prints them as `file:line:col: message`.
pub mod args;
mod bench;
mod config;
mod dataset;
mod disentangler;
pub mod docs;
mod error;
mod explanation;
mod figures;
mod math;
mod model;
mod run;
mod session;
mod study;
mod tensor;

pub use dataset::DatasetHandle;
pub use disentangler::{AdamHandle, DisentanglerHandle};
pub use error::ScriptError;
pub use explanation::ExplanationHandle;
pub use model::ModelHandle;
pub use session::{ScriptValue, Session};
pub use tensor::ScriptTensor;

use rhai::{Dynamic, Engine, EvalAltResult, Map, Module, Scope, Shared};
use serde_yaml::Value;
use std::path::{Path, PathBuf};
use tch::Device;

/// How a script host is set up.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Where `load_tensors` and new tensors go.
    pub device: Device,
    /// The command line's `key=value` arguments, which `config(path)` applies as
    /// overrides to the keys the config has.
    pub overrides: Vec<String>,
    /// Extra folders searched by `import` (`--lib`), before `$EPIC_LIB` and the
    /// checkout's `scripts/lib`.
    pub lib_dirs: Vec<PathBuf>,
    /// `epic run --sandbox`: the folders the script may touch, and Rhai's limits.
    pub sandbox: Option<Sandbox>,
}

/// A sandboxed run: its file access ([`crate::io::access::Policy`], installed
/// for the run) and Rhai's limits on the script itself.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The folders the script may read and write.
    pub policy: crate::io::access::Policy,
    /// Most Rhai operations (statements, expressions, calls) a run may take:
    /// a runaway loop stops there (`--max-operations`).
    pub max_operations: u64,
}

impl Sandbox {
    /// Rhai operations allowed by default: about a minute of pure script work,
    /// many thousand times what an experiment script takes (its work is in
    /// epic's functions, each one operation).
    pub const MAX_OPERATIONS: u64 = 100_000_000;
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions { device: Device::Cpu, overrides: Vec::new(), lib_dirs: Vec::new(), sandbox: None }
    }
}

/// All of epic's script functions, as one module: (topic title, module) pairs in
/// the order `epic doc` prints them.
pub fn topics() -> Vec<(&'static str, Module)> {
    vec![
        ("Tensors and tensor files", rhai::exported_module!(tensor::api)),
        ("EPIC math", rhai::exported_module!(math::api)),
        ("Networks", rhai::exported_module!(model::api)),
        ("Data sets", rhai::exported_module!(dataset::api)),
        ("Feature banks", rhai::exported_module!(study::api)),
        ("Training U", rhai::exported_module!(disentangler::api)),
        ("Configs", rhai::exported_module!(config::api)),
        ("Explanations", rhai::exported_module!(explanation::api)),
        ("Figures", rhai::exported_module!(figures::api)),
        ("Finished runs", rhai::exported_module!(run::api)),
        ("Measuring a run", rhai::exported_module!(bench::api)),
    ]
}

/// A Rhai engine with epic's functions registered, set up with `options`.
///
/// Print goes to stdout. Limits on nesting follow Rhai's defaults.
pub fn engine(options: &HostOptions) -> Engine {
    let mut engine = Engine::new();
    // Rhai's defaults (64 levels, 32 inside functions) reject ordinary
    // interpolated strings in module functions.
    engine.set_max_expr_depths(256, 128);
    if let Some(sandbox) = &options.sandbox {
        engine.set_max_operations(sandbox.max_operations);
        engine.set_max_call_levels(64);
        engine.set_max_string_size(16 << 20);
        engine.set_max_array_size(1 << 20);
        engine.set_max_map_size(1 << 16);
        engine.set_max_modules(256);
    }
    for (_, module) in topics() {
        engine.register_global_module(Shared::new(module));
    }
    let mut tag = rhai::Map::new();
    tag.insert("device".into(), crate::device::device_name(options.device).into());
    tag.insert("overrides".into(), Dynamic::from_array(options.overrides.iter().map(|o| o.clone().into()).collect()));
    engine.set_default_tag(Dynamic::from_map(tag));
    engine
}

/// Runs the script at `path` with `args` bound to the constant `args`.
///
/// Errors carry the file and the script position of the failing expression.
pub fn run_file(path: &Path, args: Map, options: &HostOptions) -> Result<Dynamic, ScriptError> {
    let source = std::fs::read_to_string(path).map_err(|e| ScriptError::io(path, e))?;
    run_source(&source, path, args, options)
}

/// Runs script text `source` (named `origin` in messages) with `args` bound to `args`.
pub fn run_source(source: &str, origin: &Path, args: Map, options: &HostOptions) -> Result<Dynamic, ScriptError> {
    if let Some(sandbox) = &options.sandbox {
        crate::io::access::install(Some(sandbox.policy.clone()));
    }
    let mut engine = engine(options);
    if let Some(tag) = engine.default_tag_mut().write_lock::<rhai::Map>().as_deref_mut() {
        tag.insert("script".into(), origin.display().to_string().into());
    }
    engine.set_module_resolver(module_resolver(origin, options));
    let mut scope = Scope::new();
    scope.push_constant("args", args);
    let ast = engine.compile(source).map_err(|e| ScriptError::from_parse(origin, e))?;
    engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast).map_err(|e| ScriptError::from_eval(origin, &engine, *e))
}

/// Where `import "name"` looks for `name.rhai`, in order: the script's own folder,
/// each `--lib` folder, each folder of `$EPIC_LIB` (`:`-separated), and the
/// checkout's `scripts/lib`. A folder of modules shared between researchers thus
/// works from any checkout.
pub fn module_search_path(script: &Path, options: &HostOptions) -> Vec<PathBuf> {
    let mut dirs = vec![script
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)];
    dirs.extend(options.lib_dirs.iter().cloned());
    if let Some(env) = std::env::var_os("EPIC_LIB") {
        dirs.extend(std::env::split_paths(&env));
    }
    dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/lib"));
    dirs
}

fn module_resolver(script: &Path, options: &HostOptions) -> rhai::module_resolvers::ModuleResolversCollection {
    let mut all = rhai::module_resolvers::ModuleResolversCollection::new();
    for dir in module_search_path(script, options) {
        let files = rhai::module_resolvers::FileModuleResolver::new_with_path(&dir);
        match options.sandbox {
            None => {
                all.push(files);
            }
            Some(_) => {
                all.push(SandboxedImports { files });
            }
        }
    }
    all
}

/// Under a sandbox, `import` of a module file outside the readable folders is
/// refused, naming the file and the flag, before it is read.
struct SandboxedImports {
    files: rhai::module_resolvers::FileModuleResolver,
}

impl rhai::ModuleResolver for SandboxedImports {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: rhai::Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let file = self.files.get_file_path(path, None);
        if file.is_file() {
            if let Err(denied) = crate::io::access::check_read(&file) {
                // Rhai's resolvers may fail only as "not found" or "in module".
                let inner = Box::new(EvalAltResult::ErrorRuntime(denied.to_string().into(), pos));
                return Err(Box::new(EvalAltResult::ErrorInModule(path.into(), inner, pos)));
            }
        }
        self.files.resolve(engine, source, path, pos)
    }
}

/// The one conversion from a library error to a Rhai runtime error (its
/// message; the engine adds the position): bindings write `?`.
impl From<crate::Error> for Box<EvalAltResult> {
    fn from(e: crate::Error) -> Self {
        e.to_string().into()
    }
}

/// A library result as a Rhai result (for closures and combinators; `?` does
/// the same inside a binding).
pub(crate) fn rt<T>(r: crate::Result<T>) -> Result<T, Box<EvalAltResult>> {
    Ok(r?)
}

/// The map of options a script passed, as a config section: the bindings read
/// option maps with the same typed getters as config files.
pub(crate) fn options(map: &Map) -> Value {
    config::to_yaml(&Dynamic::from_map(map.clone()))
}

/// The default device of the running engine (set from [`HostOptions::device`]).
pub(crate) fn host_device(ctx: &rhai::NativeCallContext) -> Device {
    ctx.tag()
        .and_then(|t| t.read_lock::<rhai::Map>().and_then(|m| m.get("device").map(|d| d.to_string())))
        .and_then(|name| crate::device::parse_device(&name).ok())
        .unwrap_or(Device::Cpu)
}

/// `epic run SCRIPT key=value …`: the command that runs this script again, when
/// it runs from a file.
pub(crate) fn host_command(ctx: &rhai::NativeCallContext) -> Option<String> {
    let script = ctx.tag()?.read_lock::<rhai::Map>()?.get("script")?.to_string();
    let mut words = vec!["epic".to_string(), "run".into(), script];
    words.extend(host_overrides(ctx));
    Some(words.join(" "))
}

/// The command line's `key=value` arguments (see [`HostOptions::overrides`]).
pub(crate) fn host_overrides(ctx: &rhai::NativeCallContext) -> Vec<String> {
    ctx.tag()
        .and_then(|t| t.read_lock::<rhai::Map>().and_then(|m| m.get("overrides").cloned()))
        .and_then(|a| a.try_cast::<rhai::Array>())
        .map(|a| a.into_iter().map(|x| x.to_string()).collect())
        .unwrap_or_default()
}
