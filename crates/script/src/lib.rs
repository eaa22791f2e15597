//! patholab's script layer: the Rhai engine with every library object and function registered from
//! its one declaration (`registry`), one module per object family, the embedded `stdlib/` modules,
//! limits, one conversion from library errors to script errors, and the two front ends over the
//! same engine: the prompt (`repl`) and the Jupyter kernel (`kernel`). This crate only adapts
//! `patholab_core`.

pub mod baseline;
pub mod complete;
pub mod convert;
pub mod data;
pub mod evaluation;
pub mod features;
pub mod help;
pub mod kernel;
pub mod learning;
pub mod limits;
pub mod mil;
pub mod networks;
pub mod plots;
pub mod registry;
pub mod repl;
pub mod run;
pub mod session;
pub mod show;
pub mod slides;
pub mod stain;
pub mod tables;

use registry::{Api, Doc};

use rhai::{Engine, EvalAltResult, Position, Scope};
use std::path::PathBuf;

/// Modules of `stdlib/`, embedded so scripts find them from any folder.
const STDLIB: &[(&str, &str)] = &[
    ("protocol", include_str!("../../../stdlib/protocol.rhai")),
    (
        "strategies",
        include_str!("../../../stdlib/strategies.rhai"),
    ),
];

/// Converts a library error into a script error; Rhai adds the position of the call.
pub fn to_rhai(e: patholab_core::Error) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        e.to_string().into(),
        Position::NONE,
    ))
}

/// Result type of registered functions.
pub type RResult<T> = Result<T, Box<EvalAltResult>>;

/// What a run was started with, given to the bindings when they are registered.
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    /// The shard `features` extracts when a script gives none (`patholab run --shard i/n`).
    pub shard: Option<(usize, usize)>,
}

/// A new engine with everything registered. `stdlib` overrides the embedded modules
/// (also settable with `PATHOLAB_STDLIB=dir`).
pub fn engine() -> Engine {
    engine_with(Settings::default())
}

/// A new engine with everything registered for a run started with `settings`.
pub fn engine_with(settings: Settings) -> Engine {
    let mut engine = Engine::new();
    limits::apply(&mut engine);
    engine.on_print(|s| println!("{s}"));
    engine.on_debug(|s, _, pos| eprintln!("{pos:?}: {s}"));
    register_with(&mut engine, settings);
    engine.set_module_resolver(resolver());
    engine
}

/// Registers every function on `engine` and returns their declarations, in topic order.
pub fn register(engine: &mut Engine) -> Vec<Doc> {
    register_with(engine, Settings::default())
}

/// [`register`] for a run started with `settings`.
pub fn register_with(engine: &mut Engine, settings: Settings) -> Vec<Doc> {
    let mut docs = Vec::new();
    let families: &[(&str, fn(&mut Api))] = &[
        ("prompt", help::register),
        ("data", data::register),
        ("data", stain::register),
        ("networks", networks::register),
        ("features", features::register),
        ("learning", learning::register),
        ("learning", baseline::register),
        ("slide-level", mil::register),
        ("evaluation", evaluation::register),
        ("tables", tables::register),
        ("plots", plots::register),
        ("slides", slides::register),
        ("prompt", show::declare),
    ];
    for (topic, family) in families {
        family(&mut Api::new(engine, &mut docs, topic, settings));
    }
    show::register(engine);
    docs
}

/// Resolves `import "name"` to an embedded `stdlib/` module, compiled with the calling engine.
struct Embedded;

impl rhai::ModuleResolver for Embedded {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<rhai::Shared<rhai::Module>, Box<EvalAltResult>> {
        let src = STDLIB
            .iter()
            .find(|(n, _)| *n == path)
            .map(|(_, s)| *s)
            .ok_or_else(|| Box::new(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos)))?;
        let mut ast = engine
            .compile(src)
            .map_err(|e| Box::new(EvalAltResult::from(e)))?;
        ast.set_source(format!("stdlib/{path}.rhai"));
        let m = rhai::Module::eval_ast_as_new(Scope::new(), &ast, engine)?;
        Ok(m.into())
    }
}

fn resolver() -> rhai::module_resolvers::ModuleResolversCollection {
    use rhai::module_resolvers::{FileModuleResolver, ModuleResolversCollection};
    let mut all = ModuleResolversCollection::new();
    if let Some(dir) = std::env::var_os("PATHOLAB_STDLIB") {
        let mut f = FileModuleResolver::new_with_path_and_extension(PathBuf::from(dir), "rhai");
        f.enable_cache(false);
        all.push(f);
    }
    all.push(Embedded);
    // Scripts' own modules, relative to the working folder (import "mine" as m;).
    let mut local = FileModuleResolver::new_with_path_and_extension(".", "rhai");
    local.enable_cache(false);
    all.push(local);
    all
}

/// Formats a script error with the line, the source line and a caret under the position.
pub fn format_error(err: &EvalAltResult, source: &str, file: Option<&str>) -> String {
    let pos = err.position();
    let msg = match err {
        EvalAltResult::ErrorTerminated(why, _) => {
            let why = why
                .clone()
                .into_string()
                .unwrap_or_else(|_| "interrupted (Ctrl-C)".into());
            format!("{why}; variables are kept")
        }
        _ => err.to_string(),
    };
    let msg = msg
        .rsplit_once(" (line ")
        .map(|(m, _)| m.to_string())
        .unwrap_or(msg);
    format_at(&msg, pos, source, file)
}

/// A message located at `pos` of `source`, with the source line and a caret.
pub fn format_at(msg: &str, pos: Position, source: &str, file: Option<&str>) -> String {
    match (pos.line(), pos.position()) {
        (Some(line), col) => {
            let col = col.unwrap_or(1);
            let text = source.lines().nth(line - 1).unwrap_or("");
            let place = file.map(|f| format!("{f}: ")).unwrap_or_default();
            format!(
                "{place}error at line {line}, position {col}: {msg}\n  {text}\n  {}^",
                " ".repeat(col.saturating_sub(1))
            )
        }
        _ => format!("error: {msg}"),
    }
}
