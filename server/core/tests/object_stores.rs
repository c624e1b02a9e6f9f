//! The object store on a directory and on a real S3 server (moto's server, started here).

use bytes::Bytes;
use qingting_core::{
    config::S3Config,
    objects::{DirStore, ObjectStore, S3Store},
};
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

async fn exercise(store: &dyn ObjectStore, name: &str) {
    let key = "avatars/0123abcd.png";
    assert!(
        store.get(key).await.unwrap().is_none(),
        "{name}: absent at first"
    );
    store
        .put(key, Bytes::from_static(b"\x89PNG fake"), "image/png")
        .await
        .unwrap();
    let (bytes, ct) = store.get(key).await.unwrap().expect("stored");
    assert_eq!(&bytes[..], b"\x89PNG fake");
    assert_eq!(ct, "image/png");
    store
        .put(key, Bytes::from_static(b"second"), "image/png")
        .await
        .unwrap();
    assert_eq!(
        &store.get(key).await.unwrap().unwrap().0[..],
        b"second",
        "{name}: overwrite"
    );
    store.delete(key).await.unwrap();
    assert!(store.get(key).await.unwrap().is_none());
    store.delete(key).await.unwrap(); // deleting twice is fine
    assert!(
        store.put("../escape", Bytes::new(), "x").await.is_err(),
        "{name}: bad keys refused"
    );
    eprintln!("object store suite passed on {name}");
}

#[tokio::test]
async fn object_store_on_directory() {
    let dir = tempfile::tempdir().unwrap();
    exercise(&DirStore::new(dir.path().join("objects")), "directory").await;
}

struct Moto(Child);
impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto_server() -> Option<String> {
    if let Ok(p) = std::env::var("QINGTING_TEST_MOTO_SERVER") {
        return Some(p);
    }
    let home = std::env::var("HOME").ok()?;
    let p = format!("{home}/.cache/qingting/moto/bin/moto_server");
    std::path::Path::new(&p).exists().then_some(p)
}

#[tokio::test]
async fn object_store_on_s3() {
    let Some(bin) = moto_server() else {
        assert!(
            std::env::var("QINGTING_TEST_REQUIRE_S3").as_deref() != Ok("1"),
            "moto_server required but not installed"
        );
        eprintln!("SKIPPED on s3: moto_server not installed (scripts/test installs it)");
        return;
    };
    let port = qingting_core::testing::free_port();
    let _moto = Moto(
        Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server"),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "moto_server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cfg = S3Config {
        endpoint: Some(endpoint.clone()),
        region: "us-east-1".into(),
        bucket: "qingting-test".into(),
        prefix: "tenant1".into(),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        path_style: true,
    };
    // Create the bucket with a plain S3 call (the store itself never creates buckets).
    let client = reqwest::Client::new();
    let res = client
        .put(format!("{endpoint}/qingting-test"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "create bucket: {}", res.status());
    let store = S3Store::new(&cfg);
    exercise(&store, "s3 (moto)").await;
    // The prefix is really used.
    store
        .put("avatars/ff.png", Bytes::from_static(b"x"), "image/png")
        .await
        .unwrap();
    let listing = client
        .get(format!("{endpoint}/qingting-test?list-type=2"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listing.contains("<Key>tenant1/avatars/ff.png</Key>"),
        "{listing}"
    );
}
