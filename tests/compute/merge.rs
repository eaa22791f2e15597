//! `f.merge(g)`: the columns of two feature sets of the same images side by side, rows matched by
//! image id whatever order each set holds them in; sets of different images are refused by name.

use patholab_core::features::{Column, FeatureSet};

/// Image `img{i}` has value `base + 10·i + c` in column c: a row's values say which image it is.
fn set(order: &[usize], network: &str, d: usize, base: f32) -> FeatureSet {
    let mut x = Vec::new();
    for i in order {
        x.extend((0..d).map(|c| base + 10.0 * *i as f32 + c as f32));
    }
    FeatureSet::new(
        x,
        order.iter().map(|i| format!("img{i}")).collect(),
        order.iter().map(|i| i % 2).collect(),
        order.iter().map(|i| format!("slide{}", i / 2)).collect(),
        vec!["a".into(), "b".into()],
        (0..d)
            .map(|c| Column {
                network: network.into(),
                tap: "t".into(),
                reduce: "gap".into(),
                channel: c,
            })
            .collect(),
    )
    .unwrap()
}

#[test]
fn merge_aligns_rows_by_image_not_by_position() {
    let f = set(&[0, 1, 2, 3, 4, 5], "netA", 2, 0.0);
    let g = set(&[4, 2, 0, 5, 3, 1], "netB", 3, 1000.0);
    let m = f.merge(&g).unwrap();
    assert_eq!(m.dims(), (6, 5));
    assert_eq!(m.ids, f.ids, "rows in the order of the left set");
    assert_eq!(m.labels, f.labels);
    assert_eq!(m.slides, f.slides);
    for i in 0..6 {
        let v = 10.0 * i as f32;
        assert_eq!(
            m.row(i),
            &[v, v + 1.0, 1000.0 + v, 1001.0 + v, 1002.0 + v][..],
            "row {i} ({})",
            m.ids[i]
        );
    }
    let names: Vec<String> = m.columns.iter().map(|c| c.network.clone()).collect();
    assert_eq!(names, ["netA", "netA", "netB", "netB", "netB"]);

    // The other way round: g's order, each row still one image.
    let m = g.merge(&f).unwrap();
    assert_eq!(m.ids, g.ids);
    for (r, id) in m.ids.iter().enumerate() {
        let v = 10.0 * id[3..].parse::<f32>().unwrap();
        assert_eq!(
            m.row(r),
            &[1000.0 + v, 1001.0 + v, 1002.0 + v, v, v + 1.0][..]
        );
    }

    // A subset on one side: merged where the images are the same ones, refused otherwise.
    let sub_f = f.subset(&[5, 1, 3]).unwrap();
    let sub_g = g.subset(&[5, 3, 4]).unwrap(); // images 1, 5, 3
    let m = sub_f.merge(&sub_g).unwrap();
    assert_eq!(m.ids, ["img5", "img1", "img3"]);
    assert_eq!(m.row(0), &[50.0, 51.0, 1050.0, 1051.0, 1052.0][..]);
    let e = f.merge(&sub_g).unwrap_err().to_string();
    assert_eq!(e, "merge needs the same images: 6 rows vs 3");
    let other = g.subset(&[0, 1, 2]).unwrap(); // images 4, 2, 0
    let e = sub_f.merge(&other).unwrap_err().to_string();
    assert_eq!(e, "merge: image img5 is missing from the other set");
    // The same columns twice are refused too.
    let e = f.merge(&f).unwrap_err().to_string();
    assert!(e.contains("is in both sets"), "{e}");
}
