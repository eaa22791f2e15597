//! The interactive prompt: history, multi-line input decided by compiling, completion of
//! functions, methods, variables and network/tap names, `help`, `vars`, Ctrl-C that stops the
//! running computation and keeps every variable.

mod complete;

use crate::complete::{incomplete, Known};
use crate::session::Session;
use crate::show;
use complete::PromptHelper;
use rhai::Engine;
use rustyline::error::ReadlineError;
use rustyline::{Config, Editor};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

/// Where the prompt keeps its history: `$PATHOLAB_HISTORY` or `~/.local/share/patholab/history`.
pub fn history_path() -> PathBuf {
    if let Some(p) = std::env::var_os("PATHOLAB_HISTORY") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".local/share/patholab/history")
}

/// Runs the prompt until Ctrl-D.
pub fn run() -> anyhow::Result<()> {
    let mut session = Session::default();
    let known = Rc::new(RefCell::new(Known::default()));
    let mut rl: Editor<PromptHelper, rustyline::history::DefaultHistory> = Editor::with_config(
        Config::builder()
            .auto_add_history(false)
            .max_history_size(10_000)?
            .build(),
    )?;
    rl.set_helper(Some(PromptHelper::new(known.clone())));
    let hist = history_path();
    if let Some(d) = hist.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    let _ = rl.load_history(&hist);
    println!(
        "patholab {} (libtorch {}, CUDA {}). help for help, Ctrl-D to leave.",
        env!("CARGO_PKG_VERSION"),
        patholab_core::LIBTORCH_VERSION,
        if patholab_core::cuda_devices().is_ok() {
            "available"
        } else {
            "not available"
        }
    );
    // Ctrl-C while a statement runs sets the cancel flag (the prompt itself reads Ctrl-C as a key).
    patholab_core::cancel::install_interrupt_handler();
    loop {
        match read_statement(&mut rl) {
            Ok(line) => {
                let _ = rl.add_history_entry(line.as_str());
                let _ = rl.append_history(&hist);
                let input = line.trim();
                if input.is_empty() {
                    continue;
                }
                if let Some(text) = session.command(input) {
                    println!("{text}");
                    continue;
                }
                if input == "exit" || input == "quit" {
                    break;
                }
                evaluate(&mut session, input);
                known.borrow_mut().refresh(&session.engine, &session.scope);
            }
            Err(ReadlineError::Interrupted) => println!("(Ctrl-C: input cleared; Ctrl-D leaves)"),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    let _ = rl.append_history(&hist);
    Ok(())
}

/// Reads one statement: more lines with a continuation prompt while the input is unfinished.
fn read_statement(
    rl: &mut Editor<PromptHelper, rustyline::history::DefaultHistory>,
) -> rustyline::Result<String> {
    let parser = Engine::new_raw();
    let mut text = rl.readline("patholab> ")?;
    while incomplete(&parser, &text) {
        let more = rl.readline("     ...> ")?;
        text.push('\n');
        text.push_str(&more);
    }
    Ok(text)
}

/// Runs one input at the prompt; errors are printed with a caret and every variable survives.
pub fn evaluate(session: &mut Session, input: &str) {
    match session.eval(input) {
        Ok(v) if v.is_unit() => {}
        Ok(v) => println!("{}", show::show(&session.engine, &v)),
        Err(f) => println!("{}", f.report),
    }
}
