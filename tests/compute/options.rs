//! Every option map of the script surface is read into a typed struct: an unknown key is an error
//! that names it, suggests the closest valid key and keeps the script position; a value of the
//! wrong type names the key and the type it needs. Run through the binary, as a user would.

use crate::common;

/// (script line, the key's error, the suggestion) for each option map.
const CASES: &[(&str, &str, &str)] = &[
    (
        r#"dataset("demo", #{ on_eror: "skip" })"#,
        "unknown option `on_eror` for dataset",
        "on_error",
    ),
    (
        r#"dataset("demo").split(#{ train: 0.6, val: 0.2, tset: 0.2 })"#,
        "unknown option `tset` for split",
        "test",
    ),
    (
        r#"network("efficientnet_lite0", #{ weigths: "random" })"#,
        "unknown option `weigths` for network",
        "weights",
    ),
    (
        r#"network("efficientnet_lite0", #{ weights: "random" }).features(dataset("demo"), #{ tap: "last" })"#,
        "unknown option `tap` for features",
        "taps",
    ),
    (
        r#"let d = dataset("demo"); network("efficientnet_lite0", #{ weights: "random" }).finetune(d, d.split(), #{ head_epoch: 1 })"#,
        "unknown option `head_epoch` for finetune",
        "head_epochs",
    ),
    (
        r#"linear_svm(#{ c: 0.1 })"#,
        "unknown option `c` for linear_svm",
        "C",
    ),
    (
        r#"extra_trees(#{ n_tree: 10 })"#,
        "unknown option `n_tree` for extra_trees",
        "n_trees",
    ),
    (
        r#"perceptron(#{ iteration: 10 })"#,
        "unknown option `iteration` for perceptron",
        "iterations",
    ),
    (
        r#"rfe(extra_trees(), #{ stepp: 0.1 })"#,
        "unknown option `stepp` for rfe",
        "step",
    ),
    (
        r#"results().add(#{ dataset: "a", scor: 0.5, score: 0.5 })"#,
        "unknown option `scor` for results.add",
        "score",
    ),
];

#[test]
fn an_unknown_key_in_each_option_map_is_named_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (line, error, suggestion) in CASES {
        let out = common::run_script(dir.path(), &format!("let x = 1;\n{line};\n"), &[]);
        let text = common::text(&out);
        assert_eq!(out.status.code(), Some(1), "{line}: {text}");
        assert!(text.contains(error), "{line}: {text}");
        assert!(
            text.contains(&format!("did you mean `{suggestion}`?")),
            "{line}: {text}"
        );
        assert!(
            text.contains("line 2, position"),
            "the error keeps the script position: {text}"
        );
        checked += 1;
    }
    assert!(checked >= 10);
}

#[test]
fn more_option_maps_reject_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    for (line, error) in [
        (
            r#"et_fl(#{ n_subwindow: 10 })"#,
            "unknown option `n_subwindow` for et_fl; did you mean `n_subwindows`?",
        ),
        (
            r#"slide_kfold(3, #{ scorng: "pooled" })"#,
            "unknown option `scorng` for slide_kfold; did you mean `scoring`?",
        ),
        (
            r#"let f = network("efficientnet_lite0", #{ weights: "random" }).features(dataset("demo:kather"), #{ quiet: true }); f.select(#{ tapp: "x" })"#,
            "unknown option `tapp` for select",
        ),
        (
            r#"let f = network("efficientnet_lite0", #{ weights: "random" }).features(dataset("demo:kather"), #{ quiet: true }); tune(linear_svm(), f, #{ c: [1.0] }, slide_kfold(3))"#,
            "did you mean `C`?",
        ),
    ] {
        let out = common::run_script(dir.path(), &format!("{line};\n"), &[]);
        let text = common::text(&out);
        assert_eq!(out.status.code(), Some(1), "{line}: {text}");
        assert!(text.contains(error), "{line}: {text}");
    }
}

#[test]
fn a_value_of_the_wrong_type_names_the_key_and_the_type() {
    let dir = tempfile::tempdir().unwrap();
    for (line, error) in [
        (
            r#"dataset("demo").split(#{ train: "most" })"#,
            "option `train` of split must be float, got \"most\"",
        ),
        (
            r#"dataset("demo", #{ on_error: "ignore" })"#,
            "option `on_error` of dataset must be \"fail\" | \"skip\", got \"ignore\"",
        ),
        (
            r#"extra_trees(#{ n_trees: -3 })"#,
            "option `n_trees` of extra_trees must be int ≥ 0, got -3",
        ),
        (
            r#"linear_svm(#{ C: dataset("demo") })"#,
            "option `C` of linear_svm cannot be a",
        ),
    ] {
        let out = common::run_script(dir.path(), &format!("{line};\n"), &[]);
        let text = common::text(&out);
        assert_eq!(out.status.code(), Some(1), "{line}: {text}");
        assert!(text.contains(error), "{line}: {text}");
    }
}

#[test]
fn a_value_out_of_range_is_refused_when_the_map_is_read() {
    // Each line only reads its options (no fit, no extraction): the range error comes from
    // reading the map, with the line of the script that wrote it.
    let dir = tempfile::tempdir().unwrap();
    for (line, error) in [
        (
            "let c = linear_svm(#{ C: 0.0 })",
            "linear_svm: C must be > 0, got 0",
        ),
        (
            "let c = perceptron(#{ lr: -1.0 })",
            "perceptron needs lr > 0",
        ),
        (
            "let c = extra_trees(#{ min_samples_split: 1 })",
            "min_samples_split ≥ 2",
        ),
        ("let c = et_fl(#{ C: 0.0 })", "et_fl needs C > 0"),
        (
            "let s = rfe(extra_trees(), #{ step: -0.5 })",
            "rfe needs step > 0",
        ),
        (
            r#"let s = stain_normalizer("macenko", #{ io: 0.0 })"#,
            "need io > 0",
        ),
        (
            r#"let t = tiles(slide("demo"), #{ size: 64, overlap: 64 })"#,
            "overlap < size",
        ),
        (
            r#"let t = tiles(slide("demo"), #{ min_tissue: 2.0 })"#,
            "min_tissue must be within 0..1",
        ),
        (
            r#"let s = dataset("demo").split(#{ train: -1.0 })"#,
            "split fractions must be ≥ 0",
        ),
        (
            r#"plot_slide(slide("demo"), #{ max_side: 8 }, "s.png")"#,
            "max_side is 16 to 8192, got 8",
        ),
    ] {
        let out = common::run_script(dir.path(), &format!("{line};\n"), &[]);
        let text = common::text(&out);
        assert_eq!(out.status.code(), Some(1), "{line}: {text}");
        assert!(text.contains(error), "{line}: {text}");
        assert!(
            text.contains("line 1"),
            "{line}: the error names the script line: {text}"
        );
    }
}
