//! `epic slurm` against a real SLURM: Debian's slurm-wlm and munge (installed
//! when absent), a single-node cluster of this machine started by this test
//! (munged, slurmctld, slurmd in the foreground, stopped by pid at the end),
//! 3 extraction shards of a Fashion-MNIST subset, then the training job; the U
//! file and the purity JSON must equal a single-process run's, byte for byte.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemons this test started, stopped (and only they) when dropped.
struct Cluster {
    daemons: Vec<Child>,
    conf: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for d in self.daemons.iter_mut().rev() {
            let _ = Command::new("kill").arg(d.id().to_string()).status();
            let _ = d.wait();
        }
    }
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn install_slurm() {
    if ["sbatch", "slurmctld", "slurmd", "munged"].iter().all(|c| have(c)) {
        return;
    }
    let o = Command::new("sh")
        .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge"])
        .output()
        .unwrap();
    assert!(o.status.success(), "installing slurm-wlm and munge: {}", String::from_utf8_lossy(&o.stderr));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(dir: &Path) -> Cluster {
    install_slurm();
    let host = String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap().trim().to_string();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for d in ["state", "spool", "log"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let key = dir.join("munge.key");
    std::fs::write(&key, (0..1024).map(|i| (i * 7919 % 251) as u8).collect::<Vec<u8>>()).unwrap();
    Command::new("chmod").args(["400", key.to_str().unwrap()]).status().unwrap();
    let sock = dir.join("munge.socket");
    let (ctld_port, d_port) = (free_port(), free_port());
    let conf = dir.join("slurm.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            "ClusterName=epictest\nSlurmctldHost={host}\nSlurmUser=root\nSlurmctldPort={ctld_port}\nSlurmdPort={d_port}\n\
AuthType=auth/munge\nAuthInfo=socket={sock}\nCredType=cred/munge\nStateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\nSlurmctldLogFile={d}/log/slurmctld.log\n\
SlurmdLogFile={d}/log/slurmd.log\nProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\nSchedulerType=sched/backfill\n\
SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\nMpiDefault=none\nReturnToService=2\n\
NodeName={host} CPUs={cpus} State=UNKNOWN\nPartitionName=epic Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            sock = sock.display()
        ),
    )
    .unwrap();
    let mut cluster = Cluster { daemons: Vec::new(), conf: conf.clone() };
    let spawn = |cmd: &mut Command| cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    cluster.daemons.push(spawn(
        Command::new("munged")
            .args(["--foreground", "--force", "-S"])
            .arg(&sock)
            .arg("--key-file")
            .arg(&key)
            .arg("--pid-file")
            .arg(dir.join("munged.pid"))
            .arg("--log-file")
            .arg(dir.join("log/munged.log"))
            .arg("--seed-file")
            .arg(dir.join("munge.seed")),
    ));
    let waited = Instant::now();
    while !sock.exists() {
        assert!(waited.elapsed() < Duration::from_secs(20), "munged did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.daemons.push(spawn(Command::new("slurmctld").arg("-D").arg("-f").arg(&conf)));
    std::thread::sleep(Duration::from_secs(2));
    cluster.daemons.push(spawn(Command::new("slurmd").arg("-D").arg("-f").arg(&conf)));
    // Ready when the node is idle.
    let waited = Instant::now();
    loop {
        let o = Command::new("sinfo").args(["-h", "-o", "%t"]).env("SLURM_CONF", &conf).output().unwrap();
        if String::from_utf8_lossy(&o.stdout).trim() == "idle" {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the node did not come up: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    cluster
}

/// The demo's arguments, small, with 8-image chunks (4 chunks: shards have work).
fn demo_args(out: &Path, cache: &Path) -> Vec<String> {
    let mut a: Vec<String> =
        tiny_demo(out, cache).get_args().skip(4).map(|s| s.to_string_lossy().into_owned()).collect();
    a.push("+dataloader.chunk=8".into());
    a
}

#[test]
fn epic_slurm_shards_extraction_over_a_real_slurm_and_trains_what_one_process_trains() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(&dir.path().join("slurm"));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));

    // One process, for the expected bytes.
    let single = dir.path().join("single");
    let o = Command::new(epic_bin())
        .args(["run", "scripts/demo.rhai", "--device", "cpu"])
        .args(demo_args(&single, &dir.path().join("cache_single")))
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let sharded = dir.path().join("sharded");
    let cache = dir.path().join("cache_sharded");
    let jobs = dir.path().join("jobs");
    let o = Command::new(epic_bin())
        .args(["slurm", "scripts/demo.rhai", "--shards", "3", "--device", "cpu", "--dir"])
        .arg(&jobs)
        .arg("--")
        .args(demo_args(&sharded, &cache))
        .env("SLURM_CONF", &cluster.conf)
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("submitted"), "{stdout}");

    // Both jobs finish: the queue empties and the training job wrote its files.
    let waited = Instant::now();
    loop {
        let q = Command::new("squeue").arg("-h").env("SLURM_CONF", &cluster.conf).output().unwrap();
        if String::from_utf8_lossy(&q.stdout).trim().is_empty() {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(600),
            "jobs still queued: {}",
            String::from_utf8_lossy(&q.stdout)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let logs: Vec<PathBuf> = std::fs::read_dir(&jobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("slurm-"))
        .collect();
    let log_text: String = logs
        .iter()
        .map(|p| format!("{}:\n{}\n", p.display(), std::fs::read_to_string(p).unwrap_or_default()))
        .collect();
    assert_eq!(logs.len(), 4, "3 array tasks and the training job: {log_text}");
    for shard in 0..3 {
        assert!(log_text.contains(&format!("shard {shard}/3")), "{log_text}");
    }
    for file in ["orthogonal.safetensors", "purity_after_orthogonal_train.json"] {
        let (a, b) = (std::fs::read(single.join(file)).unwrap(), std::fs::read(sharded.join(file)).unwrap_or_default());
        assert!(a == b, "{file} differs from the single-process run\n{log_text}");
    }
    // The training job found every chunk there: it ran no extraction of its own.
    let train_log = logs.iter().find(|p| !p.file_name().unwrap().to_string_lossy().contains('_')).unwrap();
    let train_log = std::fs::read_to_string(train_log).unwrap();
    assert!(train_log.contains("purity of the top-5 prototypes"), "{train_log}");
    assert!(!train_log.contains("extract:"), "the training job extracted: {train_log}");
    let status = Command::new(epic_bin()).args(["bank", "status"]).arg(&cache).output().unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("4/4 chunks"), "{status}");
    drop(cluster);
}

#[test]
fn a_dry_run_writes_the_two_sbatch_scripts_slurm_users_expect() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = dir.path().join("jobs");
    let o = Command::new(epic_bin())
        .args(["slurm", "scripts/imagenet_resnet34.rhai", "--shards", "8", "--device", "cuda", "--partition", "gpu"])
        .args(["--gpus-per-task", "1", "--cpus-per-task", "16", "--time", "04:00:00", "--dry-run", "--dir"])
        .arg(&jobs)
        .args(["--logs", "/scratch/logs", "--", "model.name=resnet50", "output_path=out dir/r50"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let extract = std::fs::read_to_string(jobs.join("extract.sbatch")).unwrap();
    let train = std::fs::read_to_string(jobs.join("train.sbatch")).unwrap();
    for line in [
        "#SBATCH --array=0-7",
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --cpus-per-task=16",
        "#SBATCH --time=04:00:00",
        "#SBATCH --output=/scratch/logs/slurm-%A_%a.out",
    ] {
        assert!(extract.contains(line), "{line} missing:\n{extract}");
    }
    assert!(extract.contains("--shard \"$SLURM_ARRAY_TASK_ID/8\" scripts/imagenet_resnet34.rhai model.name=resnet50 'output_path=out dir/r50'"), "{extract}");
    assert!(
        train.contains("#SBATCH --output=/scratch/logs/slurm-%j.out")
            && !train.contains("--array")
            && !train.contains("--shard"),
        "{train}"
    );
    // Both are valid bash.
    for f in ["extract.sbatch", "train.sbatch"] {
        assert!(Command::new("bash").arg("-n").arg(jobs.join(f)).status().unwrap().success(), "{f}");
    }
}
