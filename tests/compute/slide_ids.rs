//! Where a dataset's slide ids come from, as a script asks for them: a regex on the file name and
//! the parent folder (`dataset(path, #{ slide: ... })`), read back through `data.table()`.

use crate::common::{run_script, text};
use std::path::Path;

fn png(shade: u8) -> Vec<u8> {
    let mut b = Vec::new();
    image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([shade, x as u8 * 30, y as u8 * 30]))
        .write_to(&mut std::io::Cursor::new(&mut b), image::ImageFormat::Png)
        .unwrap();
    b
}

/// Prints one `file -> slide` line per image, in the dataset's order, then the summary line.
const SHOW: &str = r#"
let t = data.table();
let paths = t.column("path");
let slides = t.column("slide");
for i in 0..t.len() {
    let p = paths[i];
    let cut = p.index_of("/img");
    print(`${p.sub_string(cut + 1)} -> ${slides[i]}`);
}
print(data);
"#;

fn slides_of(dir: &Path, open: &str) -> (bool, String) {
    let out = run_script(dir, &format!("let data = {open};{SHOW}"), &[]);
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), {
            if out.status.success() {
                String::new()
            } else {
                text(&out)
            }
        }),
    )
}

#[test]
fn slide_ids_from_a_file_name_regex() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cells");
    for (c, (class, files)) in [
        ("imgA", ["patient_12_tile3.png", "x_patient_7_b.png"]),
        ("imgB", ["patient_12_tile9.png", "patient_300.png"]),
    ]
    .iter()
    .enumerate()
    {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for (i, f) in files.iter().enumerate() {
            std::fs::write(root.join(class).join(f), png((c * 2 + i) as u8 * 50)).unwrap();
        }
    }
    let (ok, out) = slides_of(
        dir.path(),
        r#"dataset("cells", #{ slide: "patient_\\d+" })"#,
    );
    assert!(ok, "{out}");
    // The leftmost match of the regex, anywhere in the file name; images of one patient in two
    // classes share the slide.
    for line in [
        "imgA/patient_12_tile3.png -> patient_12",
        "imgA/x_patient_7_b.png -> patient_7",
        "imgB/patient_12_tile9.png -> patient_12",
        "imgB/patient_300.png -> patient_300",
    ] {
        assert!(out.contains(line), "{line:?} missing from\n{out}");
    }
    assert!(out.contains("3 slides"), "{out}");
    assert!(
        out.contains("slide id from file name /patient_\\d+/"),
        "{out}"
    );

    // A file the regex does not match is an error naming the file and the regex.
    std::fs::write(root.join("imgB/unnamed.png"), png(9)).unwrap();
    let (ok, out) = slides_of(
        dir.path(),
        r#"dataset("cells", #{ slide: "patient_\\d+" })"#,
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("unnamed.png") && out.contains("does not match the file name"),
        "{out}"
    );
}

#[test]
fn slide_ids_from_the_parent_folder() {
    // A manifest whose paths hold one folder per slide, and no slide column.
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("path,label\n");
    for (slide, label, file) in [
        ("S01", "benign", "a.png"),
        ("S01", "benign", "b.png"),
        ("S02", "malignant", "a.png"),
        ("S03", "benign", "c.png"),
        ("S03", "malignant", "d.png"),
    ] {
        let d = dir.path().join("img").join(slide);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(file), png(file.as_bytes()[0])).unwrap();
        csv += &format!("img/{slide}/{file},{label}\n");
    }
    std::fs::write(dir.path().join("m.csv"), csv).unwrap();
    let (ok, out) = slides_of(dir.path(), r#"dataset("m.csv", #{ slide: "parent" })"#);
    assert!(ok, "{out}");
    for line in [
        "img/S01/a.png -> S01",
        "img/S01/b.png -> S01",
        "img/S02/a.png -> S02",
        "img/S03/c.png -> S03",
        "img/S03/d.png -> S03",
    ] {
        assert!(out.contains(line), "{line:?} missing from\n{out}");
    }
    assert!(
        out.contains("3 slides") && out.contains("slide id from parent folder"),
        "{out}"
    );
    // Without a slide source the parent folder is not used.
    let (ok, out) = slides_of(dir.path(), r#"dataset("m.csv")"#);
    assert!(ok, "{out}");
    assert!(
        !out.contains("-> S01") && out.contains("(one slide per image)"),
        "{out}"
    );
}
