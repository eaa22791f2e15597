//! The prompt driven through a pseudo-terminal: typing, Tab completion, a multi-line function,
//! an error followed by a working statement, Ctrl-C during a long loop, history across launches.

use rexpect::session::spawn_command;
use std::process::Command;

fn prompt(history: &std::path::Path) -> rexpect::session::PtySession {
    let mut c = Command::new(env!("CARGO_BIN_EXE_patholab"));
    c.env("PATHOLAB_HISTORY", history).env("TERM", "xterm");
    let mut p = spawn_command(c, Some(30_000)).unwrap();
    p.exp_string("patholab> ").unwrap();
    p
}

/// Types a line and gives the prompt time to read it (rustyline drops type-ahead).
fn line(p: &mut rexpect::session::PtySession, s: &str) {
    p.send_line(s).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
}

#[test]
fn a_session_at_the_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let hist = dir.path().join("history");
    let mut p = prompt(&hist);

    line(&mut p, "40 + 2");
    p.exp_string("42").unwrap();

    // A multi-line function: the prompt continues until the statement compiles.
    line(&mut p, "fn twice(x) {");
    line(&mut p, "  x * 2");
    line(&mut p, "}");
    line(&mut p, "twice(21)");
    p.exp_string("42").unwrap();

    // An error shows a position, and variables survive it.
    line(&mut p, "let kept = 7;");
    line(&mut p, "kept + undefined_thing");
    p.exp_string("position")
        .map_err(|e| panic!("{e:?}"))
        .unwrap();
    line(&mut p, "kept * 6");
    p.exp_string("42").unwrap();

    // Tab completes a function name.
    p.send("slide_kf").unwrap();
    p.send("\t").unwrap();
    line(&mut p, "3)");
    // A CV shows as the script writes it.
    p.exp_string("slide_kfold(3)\r\n").unwrap();

    // Ctrl-C interrupts a long loop and the prompt goes on.
    line(&mut p, "let n = 0; loop { n += 1; }");
    std::thread::sleep(std::time::Duration::from_millis(500));
    p.send_control('c').unwrap();
    p.exp_string("interrupted").unwrap();
    line(&mut p, "kept");
    p.exp_string("7").unwrap();

    line(&mut p, "vars");
    p.exp_string("kept").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();

    // History is kept across launches.
    let text = std::fs::read_to_string(&hist).unwrap();
    assert!(text.contains("twice(21)"), "{text}");
    let mut p = prompt(&hist);
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}
