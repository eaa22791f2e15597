//! A real SLURM cluster of one node: `scripts/setup-slurm` installs Debian's slurm-wlm when it is
//! missing, the test writes a single-node `slurm.conf` into a temporary folder, starts
//! `slurmctld -D` and `slurmd -D` as its children on loopback (ports 16817/16818) and stops them
//! by pid whatever happens. `patholab slurm submit` runs a feature extraction over the demo data
//! as 3 array tasks and a final job: the final job's matrix equals a single run's byte for byte,
//! every image is computed once (the cache holds each image once), and after `scancel` of one
//! task mid-run, a resubmission of that index computes the rest and nothing more.
//! Without SLURM (and no way to install it) the test fails under CI (`CI` set) and says loudly
//! that it did not run elsewhere.

use crate::common;

use patholab_core::features::extract::shard_of;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TASKS: usize = 3;

/// The daemons of a one-node cluster and the jobs submitted to it; dropping it cancels the jobs
/// and stops the daemons by pid.
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    daemons: Vec<Child>,
    jobs: Vec<String>,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["state", "spool"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let conf = d.join("slurm.conf");
        let p = |s: &str| d.join(s).display().to_string();
        std::fs::write(
            &conf,
            format!(
                "ClusterName=patholab
SlurmctldHost=localhost
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={ctldpid}
SlurmdPidFile={dpid}
SlurmctldLogFile={ctldlog}
SlurmdLogFile={dlog}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
KillWait=5
SlurmctldPort=16817
SlurmdPort=16818
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
",
                state = p("state"),
                spool = p("spool"),
                ctldpid = p("slurmctld.pid"),
                dpid = p("slurmd.pid"),
                ctldlog = p("slurmctld.log"),
                dlog = p("slurmd.log"),
            ),
        )
        .unwrap();
        let mut cluster = Cluster {
            dir,
            conf: conf.clone(),
            daemons: Vec::new(),
            jobs: Vec::new(),
        };
        let c = conf.to_str().unwrap();
        for args in [
            vec!["slurmctld", "-D", "-i", "-f", c],
            vec!["slurmd", "-D", "-N", "localhost", "-f", c],
        ] {
            let child = Command::new(args[0])
                .args(&args[1..])
                .env("SLURM_CONF", &conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", args[0]));
            cluster.daemons.push(child);
            if args[0] == "slurmctld" {
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        let t0 = Instant::now();
        loop {
            let s = cluster.slurm("sinfo", &["-h", "-o", "%T"]);
            if s.trim() == "idle" {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the node is not idle after 60 s (sinfo: {s:?}); logs:\n{}",
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        eprintln!("slurm: node idle after {:.1} s", t0.elapsed().as_secs_f64());
        cluster
    }

    fn logs(&self) -> String {
        ["slurmctld.log", "slurmd.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A SLURM command's stdout ("" when it fails).
    fn slurm(&self, cmd: &str, args: &[&str]) -> String {
        Command::new(cmd)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    }

    /// `scontrol show job` fields of one job (array task ids as `ID_I`).
    fn state(&self, job: &str) -> String {
        let s = self.slurm("scontrol", &["-o", "show", "job", job]);
        s.split(' ')
            .find_map(|w| w.strip_prefix("JobState="))
            .unwrap_or("UNKNOWN")
            .to_string()
    }

    /// Waits until every task of `job` has left the queue; their final states.
    fn wait(&self, job: &str, limit: Duration) -> Vec<String> {
        let t0 = Instant::now();
        while !self
            .slurm("squeue", &["-h", "-r", "-j", job, "-o", "%i"])
            .trim()
            .is_empty()
        {
            assert!(
                t0.elapsed() < limit,
                "job {job} still queued after {limit:?}:\n{}",
                self.slurm("squeue", &["-r", "-j", job])
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let s = self.slurm("scontrol", &["-o", "show", "job", job]);
        s.lines()
            .map(|l| {
                l.split(' ')
                    .find_map(|w| w.strip_prefix("JobState="))
                    .unwrap_or("?")
                    .to_string()
            })
            .collect()
    }

    /// `patholab` with this cluster's configuration and a feature cache.
    fn patholab(&self, cache: &Path) -> Command {
        let mut c = common::patholab();
        c.env("SLURM_CONF", &self.conf).env("PATHOLAB_CACHE", cache);
        c
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for j in &self.jobs {
            self.slurm("scancel", &[j]);
        }
        let t0 = Instant::now();
        while !self.jobs.is_empty()
            && !self.slurm("squeue", &["-h", "-o", "%i"]).trim().is_empty()
            && t0.elapsed() < Duration::from_secs(15)
        {
            std::thread::sleep(Duration::from_millis(200));
        }
        for d in &mut self.daemons {
            unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
        }
        for d in &mut self.daemons {
            let t0 = Instant::now();
            while d.try_wait().ok().flatten().is_none() && t0.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

/// Installs SLURM when missing; false (after saying so loudly) when it cannot outside CI.
fn slurm_available() -> bool {
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup-slurm");
    let ok = Command::new("bash")
        .arg(&setup)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let msg = "SLURM (slurm-wlm) is not installed and scripts/setup-slurm could not install it";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}: the cluster test cannot run in CI");
        }
        eprintln!("\n!!! {msg}: tests/cluster/slurm.rs DID NOT RUN (it fails under CI) !!!\n");
    }
    ok
}

const SCRIPT: &str = r#"// Features of the demo data at an inner tap, saved where `out` says.
let f = network("efficientnet_lite0").features(dataset("demo"), #{ taps: ["_blocks.5"], batch: 8, chunk: 8 });
f.save(out);
print(`saved ${f.dims()}`);
"#;

/// The counters of a log's `features:` line: (computed here, from cache, computed elsewhere).
fn counters(log: &str) -> (usize, usize, usize) {
    let n = common::counters(log);
    (n[0], n[1], n[2])
}

/// Every image hash in the chunk files of a cache, with repeats.
fn cached_images(cache: &Path) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    let mut stack = vec![cache.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "bin") {
                let b = std::fs::read(&p).unwrap();
                let n = u32::from_le_bytes(b[6..10].try_into().unwrap()) as usize;
                out.extend(
                    b[14..14 + 32 * n]
                        .chunks(32)
                        .map(|h| <[u8; 32]>::try_from(h).unwrap()),
                );
            }
        }
    }
    out
}

fn job_ids(out: &str) -> (String, String) {
    let id = |what: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(what))
            .and_then(|r| r.split(':').next())
            .unwrap_or_else(|| panic!("no {what:?} in:\n{out}"))
            .trim()
            .to_string()
    };
    (id("array job "), id("final job "))
}

#[test]
fn an_array_job_on_a_real_cluster_computes_each_image_once_and_survives_a_cancelled_task() {
    if !slurm_available() {
        return;
    }
    let t0 = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::write(w.join("extract.rhai"), SCRIPT).unwrap();
    let set_out = |name: &str| format!("out=\"{}\"", w.join(name).display());

    // The single-process reference, with the threads of a task (`--cpus 1`): libtorch's results
    // depend on its thread count in the last bits.
    let single = common::patholab()
        .env("PATHOLAB_CACHE", w.join("cache-single"))
        .env("OMP_NUM_THREADS", "1")
        .env("RAYON_NUM_THREADS", "1")
        .current_dir(w)
        .args([
            "run",
            "extract.rhai",
            "--set",
            &set_out("single.safetensors"),
        ])
        .output()
        .unwrap();
    assert!(
        single.status.success(),
        "{}",
        String::from_utf8_lossy(&single.stderr)
    );
    let images = counters(&String::from_utf8_lossy(&single.stderr)).0;
    let reference = std::fs::read(w.join("single.safetensors")).unwrap();

    let mut cluster = Cluster::start();

    // 1. Three shards and the final job.
    let cache = w.join("cache-1");
    let o = cluster
        .patholab(&cache)
        .current_dir(w)
        .args([
            "slurm",
            "submit",
            "extract.rhai",
            "--array",
            "3",
            "--cpus",
            "1",
        ])
        .args(["--set", &set_out("final1.safetensors"), "--dir", "run1"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains(&format!("{}/logs", w.join("run1").display())),
        "the logs folder is printed: {out}"
    );
    let (array, fin) = job_ids(&out);
    cluster.jobs.extend([array.clone(), fin.clone()]);
    let states = cluster.wait(&array, Duration::from_secs(300));
    assert!(
        states.iter().all(|s| s == "COMPLETED"),
        "tasks: {states:?}\n{}",
        cluster.logs()
    );
    let states = cluster.wait(&fin, Duration::from_secs(60));
    assert_eq!(states, vec!["COMPLETED"]);
    let log =
        |run: &str, f: &str| std::fs::read_to_string(w.join(run).join("logs").join(f)).unwrap();
    let shard_counts: Vec<_> = (0..TASKS)
        .map(|i| counters(&log("run1", &format!("shard-{i}.out"))))
        .collect();
    let final_counts = counters(&log("run1", "final.out"));
    eprintln!("slurm: shards computed {shard_counts:?}, final {final_counts:?}");
    assert_eq!(shard_counts.iter().map(|c| c.0).sum::<usize>(), images);
    assert_eq!(
        final_counts,
        (0, images, 0),
        "the final job computes nothing"
    );
    let cached = cached_images(&cache);
    assert_eq!(cached.len(), images, "every image computed once");
    assert!(std::fs::read(w.join("final1.safetensors")).unwrap() == reference);
    let status = cluster
        .patholab(&cache)
        .args(["slurm", "status", &array])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(status.contains(&format!("{array}_2 COMPLETED")), "{status}");
    assert!(
        status.contains(&format!("_blocks.5 ({images} images)")),
        "{status}"
    );

    // 2. Task 1 cancelled mid-run, then resubmitted alone.
    let cache = w.join("cache-2");
    let o = cluster
        .patholab(&cache)
        .current_dir(w)
        .args([
            "slurm",
            "submit",
            "extract.rhai",
            "--array",
            "3",
            "--cpus",
            "1",
        ])
        .args(["--set", &set_out("final2.safetensors"), "--dir", "run2"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{out}");
    let (array, fin) = job_ids(&out);
    cluster.jobs.extend([array.clone(), fin.clone()]);
    let task1 = format!("{array}_1");
    let shard1 = |c: &[[u8; 32]]| c.iter().filter(|h| shard_of(h, TASKS) == 1).count();
    let t1 = Instant::now();
    while shard1(&cached_images(&cache)) == 0 {
        assert!(
            cluster.state(&task1) != "COMPLETED",
            "task 1 finished before it could be cancelled"
        );
        assert!(
            t1.elapsed() < Duration::from_secs(120),
            "task 1 wrote nothing in 120 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.slurm("scancel", &[&task1]);
    let states = cluster.wait(&array, Duration::from_secs(300));
    assert!(states.contains(&"CANCELLED".to_string()), "{states:?}");
    let done_by_cancelled = shard1(&cached_images(&cache));
    // The final job can no longer start (its dependency failed): cancel it, resubmit task 1 and
    // a final job after it, as `patholab slurm submit` tells the user.
    cluster.slurm("scancel", &[&fin]);
    let dir = w.join("run2");
    let again = cluster.slurm(
        "sbatch",
        &[
            "--parsable",
            "--array=1",
            dir.join("array.sbatch").to_str().unwrap(),
        ],
    );
    let again = again.trim().split(';').next().unwrap().to_string();
    assert!(
        !again.is_empty(),
        "resubmission failed:\n{}",
        cluster.logs()
    );
    let dep = format!("--dependency=afterok:{again}");
    let fin2 = cluster.slurm(
        "sbatch",
        &[
            "--parsable",
            &dep,
            dir.join("final.sbatch").to_str().unwrap(),
        ],
    );
    let fin2 = fin2.trim().split(';').next().unwrap().to_string();
    cluster.jobs.extend([again.clone(), fin2.clone()]);
    assert_eq!(
        cluster.wait(&again, Duration::from_secs(300)),
        vec!["COMPLETED"]
    );
    assert_eq!(
        cluster.wait(&fin2, Duration::from_secs(60)),
        vec!["COMPLETED"]
    );
    let resubmitted = counters(&log("run2", "shard-1.out"));
    eprintln!("slurm: cancelled task 1 had written {done_by_cancelled} images; the resubmission {resubmitted:?}");
    assert!(done_by_cancelled > 0 && resubmitted.0 > 0);
    assert_eq!(
        resubmitted.1, done_by_cancelled,
        "the resubmission reads what the cancelled task wrote"
    );
    let cached = cached_images(&cache);
    let distinct: std::collections::HashSet<_> = cached.iter().collect();
    assert_eq!(distinct.len(), images);
    // A chunk the cancelled task was writing when it died may be lost, never duplicated.
    assert_eq!(cached.len(), images, "no image computed twice");
    assert_eq!(counters(&log("run2", "final.out")), (0, images, 0));
    assert!(std::fs::read(w.join("final2.safetensors")).unwrap() == reference);
    eprintln!("slurm: test took {:.0} s", t0.elapsed().as_secs_f64());
}
