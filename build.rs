// Gives the binary an rpath to the libtorch that torch-sys linked against, so `patholab` runs
// without LD_LIBRARY_PATH, and records that libtorch's version for `patholab --version`, and the
// site-packages folder beside it, where `scripts/setup` puts OpenSlide (the openslide-bin wheel).
// torch-sys (`links = "tch"`) exports its lib dir to direct dependents.
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        let version_py = std::path::Path::new(&lib).join("../version.py");
        let version = std::fs::read_to_string(&version_py)
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("__version__"))
                    .map(|l| l.split('\'').nth(1).unwrap_or("?").to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        println!("cargo:rustc-env=PATHOLAB_LIBTORCH_VERSION={version}");
        // The same site-packages holds the openslide-bin wheel: src/slide/openslide.rs looks there.
        if let Ok(sp) = std::path::Path::new(&lib).join("../..").canonicalize() {
            println!("cargo:rustc-env=PATHOLAB_SITE_PACKAGES={}", sp.display());
        }
    } else {
        println!("cargo:rustc-env=PATHOLAB_LIBTORCH_VERSION=unknown");
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
