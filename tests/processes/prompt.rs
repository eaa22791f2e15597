//! The prompt driven through a pseudo-terminal: typing, Tab completion, a multi-line function,
//! an error followed by a working statement, Ctrl-C during a long loop, history across launches;
//! Ctrl-C during a native extraction and during tuning (the prompt and its variables survive, the
//! cache stays consistent).

use crate::common::{patholab, patholab_in};
use rexpect::session::spawn_command;

fn prompt(history: &std::path::Path) -> rexpect::session::PtySession {
    let mut c = patholab();
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

fn chunk_files(dir: &std::path::Path) -> usize {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                n += chunk_files(&p);
            } else if p.extension().is_some_and(|x| x == "bin") {
                n += 1;
            }
        }
    }
    n
}

/// 64 demo images (one statement, so the same text serves the prompt and `patholab -e`).
const DATA: &str = r#"let rows = []; for i in 0..64 { rows.push(i * 5) } let data = dataset("demo").subset(rows); let net = network("efficientnet_lite0");"#;

#[test]
fn ctrl_c_stops_an_extraction_and_a_tuning_and_the_prompt_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let mut c = patholab_in(dir.path());
    c.env("TERM", "xterm");
    // Generous: 64 images are extracted here, on a machine that may be busy.
    let mut p = spawn_command(c, Some(300_000)).unwrap();
    p.exp_string("patholab> ").unwrap();
    line(&mut p, "let kept = 7;");
    line(&mut p, DATA);
    line(&mut p, "data.len() * 1000");
    p.exp_string("64000").unwrap();

    // A native extraction (64 images, chunks of 4), stopped once a few chunks are on disk.
    let extract = r#"let f = net.features(data, #{ batch: 4, chunk: 4 });"#;
    line(&mut p, extract);
    let t0 = std::time::Instant::now();
    while chunk_files(&cache) < 2 && t0.elapsed().as_secs() < 240 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(chunk_files(&cache) >= 2, "the extraction wrote no chunk");
    p.send_control('c').unwrap();
    p.exp_string("interrupted").unwrap();
    let stopped = chunk_files(&cache);
    assert!(
        stopped < 16,
        "the extraction finished before Ctrl-C ({stopped} chunks)"
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        chunk_files(&cache),
        stopped,
        "the extraction goes on after Ctrl-C"
    );
    line(&mut p, "kept * 6");
    p.exp_string("42").unwrap();
    line(&mut p, "data.len() + net.taps().len() * 0 + 1");
    p.exp_string("65").unwrap();

    // The same extraction again: it completes, from the chunks on disk and the rest.
    line(&mut p, extract);
    line(&mut p, r#"f.save("resumed.safetensors"); f.dims()"#);
    p.exp_string("[64, 1280]").unwrap();

    // Tuning over a long grid (40 forests of 3,000 trees on each of 5 folds: tens of seconds on
    // an idle machine), stopped; the features and earlier variables are still there, and the
    // next tuning runs to its end.
    let seeds: Vec<String> = (1..=40).map(|i| i.to_string()).collect();
    line(
        &mut p,
        &format!(
            "let m = tune(extra_trees(#{{ n_trees: 3000 }}), f, #{{ seed: [{}] }}, slide_kfold(5));",
            seeds.join(", ")
        ),
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    p.send_control('c').unwrap();
    p.exp_string("interrupted").unwrap();
    line(&mut p, "kept * 6");
    p.exp_string("42").unwrap();
    line(&mut p, "f.dims()");
    p.exp_string("[64, 1280]").unwrap();
    line(
        &mut p,
        "tune(linear_svm(), f, #{ C: [0.01] }, slide_kfold(3)).cv_scores().len() * 1000 + 1",
    );
    p.exp_string("1001").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();

    // The interrupted-then-resumed features equal an extraction that was never interrupted.
    let fresh = dir.path().join("fresh-cache");
    let out = patholab_in(dir.path())
        .env("PATHOLAB_CACHE", &fresh)
        .args([
            "-e",
            &format!(
                r#"{DATA} net.features(data, #{{ batch: 4, chunk: 4 }}).save("fresh.safetensors")"#
            ),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(dir.path().join("resumed.safetensors")).unwrap(),
        std::fs::read(dir.path().join("fresh.safetensors")).unwrap(),
        "features after an interrupted extraction equal an uninterrupted one"
    );
}
