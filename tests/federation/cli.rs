//! The `attesta` binary: CA commands, one-line errors, and a node that stops cleanly on SIGTERM.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::harness::*;

pub fn attesta() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_attesta"));
    cmd.env("RUST_LOG", "warn");
    cmd
}

fn run(args: &[&str]) -> Output {
    attesta().args(args).output().unwrap()
}

fn stderr_line(out: &Output) -> String {
    let s = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(
        s.trim_end().lines().count(),
        1,
        "error must be one line: {s:?}"
    );
    s.trim_end().to_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Runs `attesta node run` on `node`'s configuration, output discarded.
pub fn spawn_node(node: &TestNode) -> Child {
    attesta()
        .args(["node", "run", "--config"])
        .arg(&node.config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits (bounded) for a child to exit.
pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let step = Duration::from_millis(25);
    let mut waited = Duration::ZERO;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if waited >= limit {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(step);
        waited += step;
    }
}

pub fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM failed");
}

#[test]
fn ca_commands_issue_and_revoke_agency_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let ca_s = ca.to_str().unwrap();
    let out = dir.path().join("inps");

    let o = run(&[
        "ca",
        "init",
        "--dir",
        ca_s,
        "--trust-domain",
        "pu.attesta.test",
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(mode(&ca.join("ca.key")), 0o600);

    let o = run(&[
        "ca",
        "issue",
        "--dir",
        ca_s,
        "--agency",
        "inps-pesaro",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    for f in ["auth.crt", "sign.crt"] {
        assert!(out.join(f).exists());
    }
    assert_eq!(mode(&out.join("auth.key")), 0o600);
    assert_eq!(mode(&out.join("sign.key")), 0o600);

    // `ca crl` re-signs the CRL: a new file, same (empty) revocations.
    let crl_before = std::fs::read(ca.join("crl.pem")).unwrap();
    let o = run(&["ca", "crl", "--dir", ca_s]);
    assert!(o.status.success(), "{o:?}");
    assert_ne!(std::fs::read(ca.join("crl.pem")).unwrap(), crl_before);

    let crl_before = std::fs::read(ca.join("crl.pem")).unwrap();
    let o = run(&["ca", "revoke", "--dir", ca_s, "--agency", "inps-pesaro"]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("revoked 2 certificate(s)"));
    assert_ne!(std::fs::read(ca.join("crl.pem")).unwrap(), crl_before);

    // Bad input: one line, naming what is wrong, non-zero exit.
    let o = run(&[
        "ca",
        "issue",
        "--dir",
        ca_s,
        "--agency",
        "INPS Pesaro",
        "--out",
        "x",
    ]);
    assert!(!o.status.success());
    let line = stderr_line(&o);
    assert!(
        line.contains("--agency") && line.contains("INPS Pesaro"),
        "{line}"
    );

    let o = run(&["ca", "revoke", "--dir", ca_s, "--agency", "asl-1"]);
    assert!(!o.status.success());
    assert!(stderr_line(&o).contains("asl-1"));

    let o = run(&[
        "ca",
        "init",
        "--dir",
        ca_s,
        "--trust-domain",
        "pu.attesta.test",
    ]);
    assert!(!o.status.success());
    assert!(stderr_line(&o).contains("already exists"));

    let o = run(&[
        "ca",
        "issue",
        "--dir",
        "/nonexistent/ca",
        "--agency",
        "asl-1",
        "--out",
        "x",
    ]);
    assert!(!o.status.success());
    assert!(stderr_line(&o).contains("/nonexistent/ca/ca.crt"));
}

#[test]
fn node_run_with_a_bad_config_exits_with_a_one_line_error() {
    let mut pki = Pki::new();
    pki.agency("comune-pesaro");
    let other = pki.agency("comune-urbino");
    let dir = pki.agency_dir("comune-pesaro");
    let good = node_config(&pki, "comune-pesaro", "127.0.0.1:0".parse().unwrap());

    let cases: Vec<(&str, String, &str)> = vec![
        ("missing file", String::new(), "does-not-exist.toml"),
        (
            "unknown key",
            good.to_toml().replace("[tls]", "[tls]\nverify = false"),
            "unknown field `verify`",
        ),
        (
            "unreadable key",
            {
                let mut c = good.clone();
                c.tls.key = dir.join("garbage.key");
                std::fs::write(dir.join("garbage.key"), b"not a key").unwrap();
                c.to_toml()
            },
            "tls.key",
        ),
        (
            "key/cert mismatch",
            {
                let mut c = good.clone();
                c.tls.key = other.auth_key.clone();
                c.to_toml()
            },
            "does not belong",
        ),
    ];
    for (what, text, expect) in cases {
        let path = if text.is_empty() {
            dir.join("does-not-exist.toml")
        } else {
            let p = dir.join("bad.toml");
            std::fs::write(&p, text).unwrap();
            p
        };
        let o = run(&["node", "run", "--config", path.to_str().unwrap()]);
        assert!(!o.status.success(), "{what}: exited 0");
        let line = stderr_line(&o);
        assert!(line.contains(expect), "{what}: {line}");
        assert!(
            line.contains(path.file_name().unwrap().to_str().unwrap()),
            "{what}: {line} should name the file"
        );
    }
}

#[tokio::test]
async fn node_run_serves_until_sigterm_then_exits_zero() {
    let mut pki = Pki::new();
    let (node, _) = external_node(&mut pki, "questura-pu", |_| {});
    let mut child = spawn_node(&node);
    let client = pki.client("inps-pesaro");
    let url = node.url("/v1/whoami");
    let reply = eventually(|| async { client.get(&url).await.ok() }).await;
    assert_eq!(
        reply.json::<serde_json::Value>().unwrap()["node"],
        "questura-pu"
    );

    sigterm(&child);
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut child, Duration::from_secs(30)))
            .await
            .unwrap();
    assert!(status.success(), "node exited with {status}");
    assert!(client.get(&url).await.is_err());
}

#[tokio::test]
async fn sighup_reloads_the_crl_at_once() {
    let mut pki = Pki::new();
    // Polling so slow that only the signal can explain a reload within the test.
    let (node, _) = external_node(&mut pki, "questura-pu", |c| {
        c.tls.reload_interval_ms = 3_600_000;
    });
    let mut child = spawn_node(&node);
    let inps = pki.client("inps-pesaro");
    let url = node.url("/v1/whoami");
    eventually(|| async { inps.get(&url).await.ok() }).await;

    pki.ca.revoke_agency(&agency("inps-pesaro")).unwrap();
    // Not reloaded yet: the node still lets inps-pesaro in.
    assert_eq!(inps.get(&url).await.unwrap().status, 200);
    let ok = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let err = eventually(|| async { inps.get(&url).await.err() }).await;
    assert!(err.tls_error().is_some(), "{err}");

    sigterm(&child);
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut child, Duration::from_secs(30)))
            .await
            .unwrap();
    assert!(status.success());
}
