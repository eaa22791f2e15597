//! `patholab-bench`: the measurements behind `make bench`; each prints one JSON
//! line that bench/run.py puts next to the Python peers' numbers.

use patholab_core::data::loader::{batches, Prepare};
use patholab_core::data::{Dataset, OpenOptions};
use patholab_core::error::{Error, Result};
use patholab_core::features::extract::{extract, ExtractOptions};
use patholab_core::input::Preprocess;
use patholab_core::learn::{self, Classifier};
use patholab_core::nets::{NetOptions, Network, Weights};
use serde_json::json;
use std::time::Instant;

fn open(dir: &str) -> Result<Dataset> {
    Dataset::open(dir, &OpenOptions::default())
}

/// A network with random weights (the benchmarks need no downloads).
fn random_net(name: &str) -> Result<Network> {
    Network::new(
        name,
        NetOptions {
            weights: Weights::Random(0),
            ..Default::default()
        },
    )
}

/// A precision argument ("fp32", "bf16", "fp16").
fn precision(p: &str) -> Result<patholab_core::nets::precision::Precision> {
    serde_json::from_value(json!(p))
        .map_err(|e| Error::Invalid(format!("bench: precision {p:?}: {e}")))
}

/// A channels-last argument: "true", "false", or "auto"/absent for the network's default.
fn channels_last(arg: Option<&String>) -> Result<Option<bool>> {
    match arg.map(String::as_str) {
        None | Some("auto") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(c) => Err(Error::Invalid(format!(
            "bench: channels_last {c:?} (true, false, auto)"
        ))),
    }
}

/// One measurement and its arguments.
#[derive(clap::Parser)]
#[command(
    name = "patholab-bench",
    about = "The measurements behind `make bench` (one JSON line each)"
)]
enum Bench {
    /// Decode + centre square + resize 224 + normalise of every image, all cores, batches of 32.
    Decode { dir: String },
    /// Tiling a slide at `mpp`: tissue mask, grid, then every tissue tile read, resized to 224
    /// and normalised in batches of 32 (what feature extraction consumes).
    Tiles { slide: String, mpp: f64 },
    /// Feature extraction with random weights at a tap, computing every image (fresh cache); on
    /// CUDA one batch of random pixels runs first (cuDNN picks its kernels), outside the timing.
    Extract {
        dir: String,
        net: String,
        tap: String,
        /// fp32, bf16 or fp16 (the network's default when absent).
        precision: Option<String>,
        #[arg(default_value = "cpu")]
        device: String,
        #[arg(default_value_t = 32)]
        batch: usize,
        /// true, false or auto (the network's default).
        channels_last: Option<String>,
    },
    /// Forward passes alone, on random inputs.
    Forward {
        net: String,
        tap: String,
        batch: i64,
        reps: i64,
        /// fp32, bf16 or fp16 (the network's default when absent).
        precision: Option<String>,
        #[arg(default_value = "cpu")]
        device: String,
        /// true, false or auto (the network's default).
        channels_last: Option<String>,
    },
    /// Matmul and 1×1-convolution peak of libtorch on this machine (GFLOP/s).
    Matmul,
    /// Classical learning on a saved matrix (x, y, groups in a safetensors file): the parts
    /// named (et, rfe, svm), all three when none is.
    Learn {
        features: String,
        parts: Vec<String>,
    },
    /// ET-FL fit on every image of a folder at `n` subwindows per image.
    Etfl { dir: String, n: usize },
    /// ABMIL training on bags saved by bench/peers.py (`x` all tiles, `sizes`, `y`), from the
    /// reference module's initial weights, in the bags' order, for `epochs` epochs.
    Mil {
        bags: String,
        init: String,
        epochs: usize,
    },
}

/// Bags from a file of `x` (every tile's features, bag after bag), `sizes` and `y`.
fn read_bags(path: &str) -> Result<patholab_core::learn::mil::bags::Bags> {
    use patholab_core::learn::mil::bags::{Bag, Bags};
    let t = patholab_core::nets::weights::read(std::path::Path::new(path))?;
    let get = |k: &str| {
        t.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.shallow_clone())
            .ok_or_else(|| Error::Invalid(format!("{path}: no tensor {k}")))
    };
    let x = get("x")?;
    let d = x.size()[1] as usize;
    let x: Vec<f32> = Vec::try_from(x.flatten(0, -1))?;
    let sizes: Vec<i64> = Vec::try_from(get("sizes")?)?;
    let y: Vec<i64> = Vec::try_from(get("y")?)?;
    let mut start = 0;
    let bags = sizes
        .iter()
        .zip(&y)
        .enumerate()
        .map(|(i, (n, label))| {
            let n = *n as usize;
            let b = Bag {
                id: format!("bag{i}"),
                group: format!("bag{i}"),
                label: *label as usize,
                n,
                x: x[start * d..(start + n) * d].to_vec(),
                tiles: (0..n).map(|t| format!("bag{i}/{t}")).collect(),
                coords: vec![None; n],
                instances: None,
            };
            start += n;
            b
        })
        .collect();
    Ok(Bags {
        bags,
        d,
        classes: vec!["0".into(), "1".into()],
        columns: std::sync::Arc::new(vec![]),
    })
}

/// Runs one measurement.
fn run(bench: Bench) -> Result<String> {
    let out = match bench {
        Bench::Decode { dir } => {
            let ds = open(&dir)?;
            let pre = Preprocess {
                size: 224,
                interpolation: patholab_core::input::Interpolation::Bilinear,
                normalization: patholab_core::input::Normalization::ImageNet,
            };
            let t0 = Instant::now();
            let mut n = 0;
            for b in batches(
                ds.items.clone(),
                vec![0; ds.len()],
                32,
                Prepare {
                    pre,
                    stain: None,
                    augment: None,
                    seed: 0,
                },
                2,
            ) {
                n += b?.positions.len();
            }
            json!({ "images": n, "seconds": t0.elapsed().as_secs_f64() })
        }
        Bench::Tiles { slide, mpp } => {
            let t0 = Instant::now();
            let ds = patholab_core::data::tiles::tiles(
                std::path::Path::new(&slide),
                &patholab_core::data::tiles::TilesOptions {
                    size: 224,
                    mpp: Some(mpp),
                    ..Default::default()
                },
            )?;
            let mask_seconds = t0.elapsed().as_secs_f64();
            let pre = Preprocess {
                size: 224,
                interpolation: patholab_core::input::Interpolation::Bilinear,
                normalization: patholab_core::input::Normalization::ImageNet,
            };
            let mut n = 0;
            for b in batches(ds.items.clone(), vec![0; ds.len()], 32, ds.prepare(pre), 2) {
                n += b?.positions.len();
            }
            // The tissue mask and grid come first (`mask_seconds` of the total).
            json!({ "tiles": n, "seconds": t0.elapsed().as_secs_f64(), "mask_seconds": mask_seconds })
        }
        Bench::Extract {
            dir,
            net,
            tap,
            precision: p,
            device,
            batch,
            channels_last: cl,
        } => {
            let ds = open(&dir)?;
            let device = patholab_core::parse_device(&device)?;
            let mut net = random_net(&net)?;
            if device.is_cuda() {
                net = net.duplicate(device)?;
            }
            // `true`/`false` overrides the network's channels-last default.
            if let Some(c) = channels_last(cl.as_ref())? {
                net.channels_last = c;
            }
            let precision = p.as_deref().map(precision).transpose()?;
            let o = ExtractOptions {
                taps: patholab_core::options::Names(vec![tap]),
                batch,
                quiet: true,
                precision,
                ..Default::default()
            };
            if device.is_cuda() {
                let s = net.spec.input_size;
                let x = tch::Tensor::randn([batch as i64, 3, s, s], (tch::Kind::Float, device));
                let taps = net.resolve_taps(&o.taps.0)?;
                let p = precision.unwrap_or(net.precision);
                tch::no_grad(|| {
                    patholab_core::nets::precision::autocast(device, p, || {
                        net.forward_taps(&x, &taps, false)
                    })
                });
                if let tch::Device::Cuda(i) = device {
                    tch::Cuda::synchronize(i as i64);
                }
            }
            let t0 = Instant::now();
            let f = extract(&net, &ds, &o)?;
            let secs = t0.elapsed().as_secs_f64();
            json!({ "images": f.n, "computed": f.computed, "seconds": secs, "input_wait": f.input_wait, "features": f.d, "preprocess": format!("{:?}", net.preprocess()), "device": format!("{device:?}"), "batch": batch, "channels_last": net.channels_last })
        }
        Bench::Forward {
            net,
            tap,
            batch: b,
            reps,
            precision: p,
            device,
            channels_last: cl,
        } => {
            let device = patholab_core::parse_device(&device)?;
            let mut net = random_net(&net)?;
            if device.is_cuda() {
                net = net.duplicate(device)?;
            }
            if let Some(c) = channels_last(cl.as_ref())? {
                net.channels_last = c;
            }
            let taps = net.resolve_taps(&[tap])?;
            let precision = match p {
                Some(p) => precision(&p)?,
                None => net.precision,
            };
            let s = net.spec.input_size;
            let x = tch::Tensor::randn([b, 3, s, s], (tch::Kind::Float, device));
            let run = || {
                let out = tch::no_grad(|| {
                    patholab_core::nets::precision::autocast(device, precision, || {
                        net.forward_taps(&x, &taps, false)
                    })
                });
                // The outputs' first value on the host: every kernel has run.
                let _ = out
                    .last()
                    .map(|t| t.flatten(0, -1).get(0).double_value(&[]));
            };
            run();
            let t0 = Instant::now();
            for _ in 0..reps {
                run();
            }
            let secs = t0.elapsed().as_secs_f64();
            json!({ "images_per_s": (b * reps) as f64 / secs, "threads": tch::get_num_threads(), "channels_last": net.channels_last })
        }
        Bench::Matmul => {
            let n = 2048;
            let x = tch::Tensor::randn([n, n], tch::kind::FLOAT_CPU);
            let _ = x.matmul(&x);
            let t0 = Instant::now();
            let reps = 10;
            for _ in 0..reps {
                let _ = x.matmul(&x);
            }
            let gemm = 2.0 * (n as f64).powi(3) * reps as f64 / t0.elapsed().as_secs_f64() / 1e9;
            // A 1×1 convolution, 2048 → 2048 channels over 64×64 pixels (a 2048×2048 by
            // 2048×4096 product), which libtorch hands to oneDNN rather than to the BLAS: the
            // convolutions' own peak.
            let side = 64;
            let img = tch::Tensor::randn([1, n, side, side], tch::kind::FLOAT_CPU);
            let w = tch::Tensor::randn([n, n, 1, 1], tch::kind::FLOAT_CPU);
            let conv = || img.conv2d(&w, None::<tch::Tensor>, [1, 1], [0, 0], [1, 1], 1);
            let _ = conv();
            let t0 = Instant::now();
            for _ in 0..reps {
                let _ = conv();
            }
            let conv_peak = 2.0 * (n as f64).powi(2) * (side * side) as f64 * reps as f64
                / t0.elapsed().as_secs_f64()
                / 1e9;
            json!({ "gflops": gemm, "conv_gflops": conv_peak })
        }
        Bench::Learn { features, parts } => {
            let f = patholab_core::features::io::load(std::path::Path::new(&features))?;
            let part = |name: &str| parts.is_empty() || parts.iter().any(|p| p == name);
            let mut r = serde_json::Map::new();
            if part("et") {
                let t0 = Instant::now();
                let et = learn::extra_trees::ExtraTrees {
                    n_trees: 100,
                    ..Default::default()
                };
                learn::fit(&et, &f)?;
                r.insert("extra_trees_fit".into(), json!(t0.elapsed().as_secs_f64()));
            }
            if part("rfe") {
                let t0 = Instant::now();
                let sel = learn::rfe::Rfe {
                    estimator: Box::new(learn::extra_trees::ExtraTrees {
                        n_trees: 100,
                        ..Default::default()
                    }),
                    step: 0.1,
                    cv: patholab_core::data::split::Cv::slide_kfold(3),
                    tolerance: 0.005,
                };
                let res = sel.fit(&f)?;
                r.insert("rfe".into(), json!(t0.elapsed().as_secs_f64()));
                r.insert("rfe_k_min".into(), json!(res.k_min));
            }
            if part("svm") {
                let t0 = Instant::now();
                let grid = vec![(
                    "C".to_string(),
                    (-10..=1)
                        .map(|e| learn::Param::Float(10f64.powi(e)))
                        .collect(),
                )];
                let svm: Box<dyn Classifier> = Box::new(learn::linear_svm::LinearSvm::default());
                learn::tune::tune(
                    svm.as_ref(),
                    &f,
                    &grid,
                    &patholab_core::data::split::Cv::slide_kfold(5),
                )?;
                r.insert("svm_grid".into(), json!(t0.elapsed().as_secs_f64()));
            }
            serde_json::Value::Object(r)
        }
        Bench::Mil { bags, init, epochs } => {
            use patholab_core::learn::mil::{AbmilOptions, ClassWeight, MilLearner};
            let b = read_bags(&bags)?;
            let learner = MilLearner::Abmil(AbmilOptions {
                dropout: 0.0,
                epochs,
                shuffle: false,
                class_weight: ClassWeight::Uniform,
                weights: Some(init.into()),
                quiet: true,
                ..Default::default()
            });
            let t0 = Instant::now();
            let m = learner.fit(&b)?;
            let seconds = t0.elapsed().as_secs_f64();
            let tiles: usize = b.bags.iter().map(|b| b.n).sum();
            json!({ "bags": b.len(), "tiles": tiles, "seconds": seconds,
                    "final_loss": m.history.last().map(|e| e.train_loss) })
        }
        Bench::Etfl { dir, n } => {
            let ds = open(&dir)?;
            let p = patholab_core::baseline::et_fl::EtFl {
                n_subwindows: n,
                ..Default::default()
            };
            let t0 = Instant::now();
            let m = p.fit(&ds, &(0..ds.len()).collect::<Vec<_>>())?;
            json!({ "images": ds.len(), "seconds": t0.elapsed().as_secs_f64(), "leaves": m.n_leaves() })
        }
    };
    Ok(out.to_string())
}

fn main() -> std::process::ExitCode {
    let _ = patholab_core::load_cuda();
    let bench = <Bench as clap::Parser>::parse();
    match run(bench) {
        Ok(s) => {
            println!("{s}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
