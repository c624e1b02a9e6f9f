//! Several servers in one process, as the test suites run them: starting one never stalls a
//! page another is rendering (the route list is generated once per process; generating it
//! holds back every `Resource` in the process while it runs).

use qingting_core::{testing::free_port, Config};
use std::time::Duration;

async fn server() -> (qingting_server::RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = Config {
        listen: format!("127.0.0.1:{port}"),
        public_url: format!("http://localhost:{port}"),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    (qingting_server::start(config).await.unwrap(), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_while_other_servers_start() {
    let (a, _dir) = server().await;
    let url = format!("http://{}/login", a.addr);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let pages = tokio::spawn(async move {
        for i in 0..200 {
            let res = client.get(&url).send().await;
            let status = res.map(|r| r.status().as_u16()).map_err(|e| e.to_string());
            assert_eq!(status, Ok(200), "page {i} while other servers start");
        }
    });
    for _ in 0..8 {
        let (other, _other_dir) = server().await;
        other.stop().await.unwrap();
    }
    pages.await.unwrap();
}
