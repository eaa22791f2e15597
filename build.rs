// Gives the binary an rpath to the libtorch that torch-sys linked against, so `patholab` runs
// without LD_LIBRARY_PATH. torch-sys (`links = "tch"`) exports its lib dir to direct dependents.
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
