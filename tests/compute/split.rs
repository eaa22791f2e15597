//! Splits as a script sees them: the audit's text (images, slides and class counts per part,
//! shared slides) and the refusal of a manifest whose split column puts a slide on two sides.

use crate::common::{run_script, text};
use std::path::Path;

fn png(shade: u8) -> Vec<u8> {
    let mut b = Vec::new();
    image::RgbImage::from_fn(16, 12, |x, y| {
        image::Rgb([shade, (x * 9) as u8, (y * 11) as u8])
    })
    .write_to(&mut std::io::Cursor::new(&mut b), image::ImageFormat::Png)
    .unwrap();
    b
}

/// A manifest of 12 images on slides S0..S5 (two images each, one of each class), with the
/// split column given per image.
fn manifest(dir: &Path, name: &str, split_of: impl Fn(usize) -> &'static str) {
    std::fs::create_dir_all(dir.join("img")).unwrap();
    let mut csv = String::from("path,label,slide,split\n");
    for i in 0..12 {
        std::fs::write(dir.join(format!("img/{i}.png")), png(i as u8 * 20)).unwrap();
        let label = if i % 2 == 0 { "tumour" } else { "normal" };
        csv += &format!("img/{i}.png,{label},S{},{}\n", i / 2, split_of(i));
    }
    std::fs::write(dir.join(name), csv).unwrap();
}

/// S0–S2 train, S3 val, S4–S5 test.
fn clean(i: usize) -> &'static str {
    ["train", "train", "train", "val", "test", "test"][i / 2]
}

#[test]
fn the_audit_counts_each_part_and_says_no_slide_is_shared() {
    let dir = tempfile::tempdir().unwrap();
    manifest(dir.path(), "m.csv", clean);
    let out = run_script(
        dir.path(),
        r#"let s = dataset("m.csv").split(); print(s.audit());"#,
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    // Classes are sorted: normal (odd rows), tumour (even rows).
    let want = "\
part    images  slides  per class (normal, tumour)
train        6       3  [3, 3]
val          2       1  [1, 1]
test         4       2  [2, 2]
no slide is shared between parts
";
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);

    // A random split of the same images, by slide: the parts add up and share no slide.
    let out = run_script(
        dir.path(),
        r#"let d = dataset("m.csv", #{ split_column: "none" }); print(d.split(#{ train: 0.5, val: 0.0, test: 0.5, seed: 3 }).audit());"#,
        &[],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("no slide is shared between parts"), "{t}");
}

#[test]
fn a_manifest_that_puts_a_slide_in_train_and_test_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // Image 9 (slide S4, otherwise test) goes to train.
    manifest(dir.path(), "leaky.csv", |i| {
        if i == 9 {
            "train"
        } else {
            clean(i)
        }
    });
    let out = run_script(
        dir.path(),
        r#"let s = dataset("leaky.csv").split(); print(s.audit());"#,
        &[],
    );
    let t = text(&out);
    assert!(!out.status.success(), "a leaky split was accepted: {t}");
    assert!(
        t.contains("1 slide(s) in both train and test: S4")
            && t.contains("allow_slide_leakage: true"),
        "{t}"
    );
    assert!(
        t.contains("line 1"),
        "the error has the script position: {t}"
    );

    // Allowed explicitly: the split is made and the audit says what leaks.
    let out = run_script(
        dir.path(),
        r#"let s = dataset("leaky.csv").split(#{ allow_slide_leakage: true }); print(s.audit());"#,
        &[],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("train        7       4  [4, 3]")
            && t.contains("test         3       2  [1, 2]")
            && t.contains("WARNING: 1 slide(s) shared between parts (leakage allowed explicitly)"),
        "{t}"
    );
}
