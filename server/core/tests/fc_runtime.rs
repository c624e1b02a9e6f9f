//! The `fc` runtime through the workspace service, against the FC simulator: create, stop,
//! start and delete; FC's calls in the right order (two serial round trips before waiting);
//! throttling retried; a create interrupted by a crash finished by the next server's
//! recovery; a failed step recovered by Start; the pool of functions created ahead, handed
//! over to their owner when a create takes one (SQLite, Postgres, MariaDB).

use qingting_core::audit::Actor;
use qingting_core::{
    accounts::{self, Account},
    config::{FcProtocol, FcRuntimeConfig},
    store, templates,
    testing::{Backend, TestDatabase},
    workspaces::{
        fc::{FcRuntime, FcSite},
        WorkspaceLimits, WorkspaceService, WorkspaceState,
    },
};
use qingting_fc::model::Function;
use qingting_fc::{
    sim::{self, SimConfig, SimControl},
    Credentials, FcClient, RetryPolicy,
};
use std::{
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

async fn start_sim() -> (String, Arc<SimControl>, SimConfig) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let control = Arc::new(SimControl::default());
    let cfg = SimConfig {
        pending: Duration::from_millis(150),
        ..SimConfig::default()
    };
    tokio::spawn(sim::serve(listener, cfg.clone(), control.clone()));
    (format!("http://{addr}"), control, cfg)
}

fn client(endpoint: &str, sim: &SimConfig) -> FcClient {
    let mut client = FcClient::new(
        endpoint,
        Credentials {
            access_key_id: sim.access_key_id.clone(),
            access_key_secret: sim.access_key_secret.clone(),
            security_token: None,
        },
    );
    client.retry = RetryPolicy {
        first_backoff: Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    client
}

fn service(
    db: store::DatabaseConnection,
    endpoint: &str,
    sim: &SimConfig,
) -> Arc<WorkspaceService> {
    service_with_pool(db, endpoint, sim, Vec::new())
}

fn service_with_pool(
    db: store::DatabaseConnection,
    endpoint: &str,
    sim: &SimConfig,
    pool: Vec<(String, u32)>,
) -> Arc<WorkspaceService> {
    service_with(db, endpoint, sim, pool, u64::MAX)
}

fn service_with(
    db: store::DatabaseConnection,
    endpoint: &str,
    sim: &SimConfig,
    pool: Vec<(String, u32)>,
    max_running: u64,
) -> Arc<WorkspaceService> {
    let client = client(endpoint, sim);
    let cfg = FcRuntimeConfig {
        endpoint: Some(endpoint.into()),
        image_registry: Some("registry-vpc.cn-hangzhou.aliyuncs.com/qingting".into()),
        vpc_id: Some("vpc-1".into()),
        vswitch_ids: vec!["vsw-1".into()],
        security_group_id: Some("sg-1".into()),
        nas_server: Some("nas-1.cn-hangzhou.nas.aliyuncs.com:/qingting".into()),
        protocol: FcProtocol::Https,
        ..FcRuntimeConfig::default()
    };
    let site = FcSite {
        domain: "ws.example.com".into(),
        dashboard_url: "https://studio.example.com".into(),
        token_public_key: "ab".repeat(32),
        cert: Some((
            "-----BEGIN CERTIFICATE-----".into(),
            "-----BEGIN PRIVATE KEY-----".into(),
        )),
    };
    let mut rt = FcRuntime::new(client, cfg, site);
    rt.poll = Duration::from_millis(50);
    let limits = WorkspaceLimits {
        max_per_user: 5,
        max_running_per_user: 5,
    };
    // One replica name for every service here: the next server after a crash is the same
    // replica (as with one data dir), so it takes the crashed one's claims back at once.
    Arc::new(
        WorkspaceService::new(db, Arc::new(rt), templates::builtin(), limits, None)
            .with_replica("replica-1".into(), None)
            .with_max_running(max_running)
            .with_pool(pool)
            .unwrap(),
    )
}

async fn user(db: &store::DatabaseConnection) -> Account {
    accounts::register(db, "alice", "correct horse battery")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fc_lifecycle_against_the_simulator() {
    let tdb = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let db = tdb.connect().await;
    let (endpoint, control, simcfg) = start_sim().await;
    let svc = service(db.clone(), &endpoint, &simcfg);
    let alice = user(&db).await;

    // Throttled at the start: retried, invisible to the user.
    control.throttle_next.store(2, Ordering::SeqCst);
    let ws = svc.create(&alice, "demo", "jupyter-python").await.unwrap();
    assert_eq!(ws.state, WorkspaceState::Running, "{:?}", ws.reason);
    let calls = control.calls();
    // Critical path: CreateFunction, then trigger and domain together, then waiting.
    let first = calls.iter().position(|c| c == "CreateFunction").unwrap();
    let later: Vec<&str> = calls[first + 1..]
        .iter()
        .map(String::as_str)
        .filter(|c| *c != "CreateFunction")
        .take(2)
        .collect();
    let mut pair = later.clone();
    pair.sort();
    assert_eq!(pair, ["CreateCustomDomain", "CreateTrigger"], "{calls:?}");
    for c in [
        "GetFunction",
        "PutProvisionConfig",
        "EnableFunctionInvocation",
        "ListInstances",
    ] {
        assert!(calls.iter().any(|x| x == c), "{c} missing from {calls:?}");
    }

    let v = svc.stop(&alice, ws.id).await.unwrap();
    assert_eq!(v.state, WorkspaceState::Stopped);
    assert!(
        control.count("DisableFunctionInvocation") == 1
            && control.count("DeleteProvisionConfig") == 1
    );
    assert_eq!(
        svc.start(&alice, ws.id).await.unwrap().state,
        WorkspaceState::Running
    );

    // A step that fails leaves the workspace failed with FC's reason; Start finishes the job
    // (the function that exists is adopted, not an error).
    control.fail("CreateCustomDomain", 400, "DomainNameNotResolved");
    let two = svc.create(&alice, "two", "vscode-python").await.unwrap();
    assert_eq!(two.state, WorkspaceState::Failed);
    assert!(
        two.reason
            .as_deref()
            .unwrap_or("")
            .contains("DomainNameNotResolved"),
        "{two:?}"
    );
    assert_eq!(
        svc.start(&alice, two.id).await.unwrap().state,
        WorkspaceState::Running
    );

    // Delete removes domain, triggers, function, in that order; a second delete finds nothing.
    let before = control.calls().len();
    svc.delete(&alice, ws.id).await.unwrap();
    let tail: Vec<String> = control.calls()[before..]
        .iter()
        .filter(|c| c.starts_with("Delete") && *c != "DeleteProvisionConfig")
        .cloned()
        .collect();
    assert_eq!(
        tail,
        ["DeleteCustomDomain", "DeleteTrigger", "DeleteFunction"]
    );
    svc.delete(&alice, two.id).await.unwrap();
    assert!(svc.list(&alice).await.unwrap().is_empty());
    assert!(
        control.refused.lock().unwrap().is_empty(),
        "every request passed the simulator's checks"
    );
    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

#[test]
fn an_interrupted_create_is_finished_after_a_restart() {
    let (_dir, url, main) = crash_scene();
    let (endpoint, control, simcfg) = main.block_on(start_sim());
    control.latency_ms.store(50, Ordering::SeqCst);

    // The first server: crashes (its runtime is dropped) right after CreateFunction went out.
    let crashed = doomed_runtime();
    let id = crashed.block_on(async {
        let db = store::connect(&url).await.unwrap();
        store::migrate(&db).await.unwrap();
        let alice = user(&db).await;
        let svc = service(db.clone(), &endpoint, &simcfg);
        let ws = svc
            .create_in_background(&Actor::user(&alice, None), &alice, "demo", "vscode-node")
            .await
            .unwrap();
        while control.count("CreateFunction") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        ws.id
    });
    drop(crashed);
    assert_eq!(
        control.count("CreateTrigger") + control.count("CreateCustomDomain"),
        0,
        "interrupted before the second round trip"
    );

    // The next server finds the workspace `creating` and finishes it.
    main.block_on(async {
        let db = store::connect(&url).await.unwrap();
        let alice = accounts::find_by_username(&db, "alice")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            svc_state(&db, &endpoint, &simcfg, &alice, id).await,
            WorkspaceState::Creating
        );
        let svc = service(db.clone(), &endpoint, &simcfg);
        svc.recover().await.unwrap();
        let v = until_running(&svc, &alice, id).await;
        assert_eq!(v.state, WorkspaceState::Running, "{v:?}");
        assert_eq!(
            control.count("CreateFunction"),
            2,
            "the second attempt adopted the function"
        );
    });
}

/// A throw-away SQLite file's URL (kept while the guard lives) and a runtime for the
/// simulator and the server that outlives the crash.
fn crash_scene() -> (tempfile::TempDir, String, tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("q.db").display());
    let main = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    (dir, url, main)
}

/// A runtime for a server that crashes: dropping it stops everything it was doing.
fn doomed_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits up to 5 s for workspace `id` to be running; its last view either way.
async fn until_running(
    svc: &WorkspaceService,
    who: &Account,
    id: i64,
) -> qingting_core::workspaces::WorkspaceView {
    let mut v = svc.get(who, id).await.unwrap();
    // Up to 30 s: a dozen simulator round trips on a loaded machine.
    for _ in 0..1200 {
        if v.state == WorkspaceState::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        v = svc.get(who, id).await.unwrap();
    }
    v
}

async fn svc_state(
    db: &store::DatabaseConnection,
    endpoint: &str,
    sim: &SimConfig,
    who: &Account,
    id: i64,
) -> WorkspaceState {
    service(db.clone(), endpoint, sim)
        .get(who, id)
        .await
        .unwrap()
        .state
}

qingting_core::on_every_backend!(
    a_create_hands_a_function_created_ahead_over_to_its_owner,
    functions_created_ahead_take_no_room_on_the_host,
);

async fn function(endpoint: &str, sim: &SimConfig, id: i64) -> Function {
    client(endpoint, sim)
        .get_function(&format!("qingting-ws-{id}"))
        .await
        .unwrap()
}

async fn a_create_hands_a_function_created_ahead_over_to_its_owner(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let (endpoint, control, simcfg) = start_sim().await;
    let pool = vec![("jupyter-python".to_string(), 2)];
    let svc = service_with_pool(db.clone(), &endpoint, &simcfg, pool);
    let alice = user(&db).await;

    // Created ahead: no owner in it, no files, no address, nothing can call it, not started.
    svc.fill_pool().await.unwrap();
    let status = svc.pool_status().await.unwrap();
    assert_eq!((status[0].ready, status[0].starting), (2, 0), "{status:?}");
    assert_eq!(control.count("CreateFunction"), 2);
    assert_eq!(control.count("DisableFunctionInvocation"), 2);
    for c in ["CreateCustomDomain", "PutProvisionConfig", "ListInstances"] {
        assert_eq!(control.count(c), 0, "{c} for a function created ahead");
    }

    // Taken: handed over (UpdateFunction and CreateCustomDomain together), then started.
    let before = control.calls().len();
    let ws = svc.create(&alice, "demo", "jupyter-python").await.unwrap();
    assert_eq!(ws.state, WorkspaceState::Running, "{:?}", ws.reason);
    let calls = control.calls()[before..].to_vec();
    assert!(!calls.iter().any(|c| c == "CreateFunction"), "{calls:?}");
    let mut first_two: Vec<&str> = calls.iter().take(2).map(String::as_str).collect();
    first_two.sort();
    assert_eq!(
        first_two,
        ["CreateCustomDomain", "UpdateFunction"],
        "{calls:?}"
    );
    let f = function(&endpoint, &simcfg, ws.id).await;
    let env = &f.environment_variables;
    assert_eq!(env.get("QINGTING_OWNER").map(String::as_str), Some("alice"));
    assert_eq!(
        env.get("QINGTING_WORKSPACE").map(String::as_str),
        Some("demo")
    );
    assert_eq!(env["QINGTING_OWNER_ID"], alice.id.to_string());
    assert_eq!(env["QINGTING_WORKSPACE_ID"], ws.id.to_string());
    assert_eq!(env["QINGTING_IDE_UID"], (100_000 + alice.id).to_string());
    let nas = f
        .nas_config
        .as_ref()
        .expect("the owner's files are mounted");
    assert_eq!(nas.user_id, 100_000 + alice.id);
    assert_eq!(
        nas.mount_points[0].server_addr,
        format!(
            "nas-1.cn-hangzhou.nas.aliyuncs.com:/qingting/alice/{}/files",
            ws.id
        )
    );
    assert!(f.description.contains("alice-demo"), "{}", f.description);
    client(&endpoint, &simcfg)
        .get_custom_domain("alice-demo.ws.example.com")
        .await
        .unwrap();

    // The pool refills; the other function still has no owner.
    svc.fill_pool().await.unwrap();
    let rows = svc.pool_status().await.unwrap();
    assert_eq!(rows[0].ready, 2);
    assert_eq!(control.count("CreateFunction"), 3);

    // A hand-over that fails leaves the workspace failed with the reason; Start does it again.
    control.fail("UpdateFunction", 400, "InvalidArgument");
    let two = svc.create(&alice, "two", "jupyter-python").await.unwrap();
    assert_eq!(two.state, WorkspaceState::Failed);
    assert!(
        two.reason
            .as_deref()
            .unwrap_or("")
            .contains("hand the workspace over"),
        "{two:?}"
    );
    assert!(!function(&endpoint, &simcfg, two.id)
        .await
        .environment_variables
        .contains_key("QINGTING_OWNER"));
    assert_eq!(
        svc.start(&alice, two.id).await.unwrap().state,
        WorkspaceState::Running
    );
    assert_eq!(
        function(&endpoint, &simcfg, two.id)
            .await
            .environment_variables["QINGTING_OWNER"],
        "alice"
    );

    // A create in the background answers `starting` and comes up.
    svc.fill_pool().await.unwrap();
    svc.delete(&alice, ws.id).await.unwrap();
    let three = svc
        .create_in_background(
            &Actor::user(&alice, None),
            &alice,
            "three",
            "jupyter-python",
        )
        .await
        .unwrap();
    assert_eq!(three.state, WorkspaceState::Starting);
    let v = until_running(&svc, &alice, three.id).await;
    assert_eq!(v.state, WorkspaceState::Running, "{v:?}");

    // Without a pool, the function left in it goes (it had no domain); users' stay.
    drop(svc);
    let svc = service_with_pool(
        db.clone(),
        &endpoint,
        &simcfg,
        vec![("jupyter-python".into(), 0)],
    );
    let (domains, functions) = (
        control.count("DeleteCustomDomain"),
        control.count("DeleteFunction"),
    );
    svc.fill_pool().await.unwrap();
    let status = svc.pool_status().await.unwrap();
    assert_eq!((status[0].ready, status[0].starting), (0, 0));
    assert_eq!(control.count("DeleteFunction"), functions + 1);
    assert_eq!(control.count("DeleteCustomDomain"), domains);
    assert_eq!(svc.list(&alice).await.unwrap().len(), 2);
    assert!(
        control.refused.lock().unwrap().is_empty(),
        "every request passed the simulator's checks: {:?}",
        control.refused.lock().unwrap()
    );
    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

#[test]
fn a_hand_over_interrupted_by_a_crash_is_done_again_after_a_restart() {
    let (_dir, url, main) = crash_scene();
    let (endpoint, control, simcfg) = main.block_on(start_sim());
    let pool = || vec![("jupyter-python".to_string(), 1)];

    // The first server fills the pool, then crashes as a create's hand-over goes out.
    let crashed = doomed_runtime();
    let id = crashed.block_on(async {
        let db = store::connect(&url).await.unwrap();
        store::migrate(&db).await.unwrap();
        let alice = user(&db).await;
        let svc = service_with_pool(db.clone(), &endpoint, &simcfg, pool());
        svc.fill_pool().await.unwrap();
        control.latency_ms.store(50, Ordering::SeqCst);
        let ws = svc
            .create_in_background(&Actor::user(&alice, None), &alice, "demo", "jupyter-python")
            .await
            .unwrap();
        assert_eq!(ws.state, WorkspaceState::Starting);
        while control.count("UpdateFunction") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        ws.id
    });
    drop(crashed);
    assert_eq!(
        control.count("PutProvisionConfig"),
        0,
        "crashed before the start"
    );

    // The next server finds it `starting`, hands it over again and starts it.
    main.block_on(async {
        let db = store::connect(&url).await.unwrap();
        let alice = accounts::find_by_username(&db, "alice")
            .await
            .unwrap()
            .unwrap();
        let svc = service_with_pool(db.clone(), &endpoint, &simcfg, pool());
        svc.recover().await.unwrap();
        let v = until_running(&svc, &alice, id).await;
        assert_eq!(v.state, WorkspaceState::Running, "{v:?}");
        assert_eq!(control.count("UpdateFunction"), 2, "handed over again");
        assert_eq!(
            function(&endpoint, &simcfg, id).await.environment_variables["QINGTING_OWNER"],
            "alice"
        );
    });
}

async fn functions_created_ahead_take_no_room_on_the_host(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let (endpoint, control, simcfg) = start_sim().await;
    let pool = vec![("jupyter-python".to_string(), 2)];
    // Room for one running workspace: the two functions waiting in the pool take none of it.
    let svc = service_with(db.clone(), &endpoint, &simcfg, pool, 1);
    let alice = user(&db).await;
    svc.fill_pool().await.unwrap();
    assert_eq!(svc.pool_status().await.unwrap()[0].ready, 2);

    // The one slot goes to the create that takes a function (not to the function itself).
    let ws = svc.create(&alice, "demo", "jupyter-python").await.unwrap();
    assert_eq!(ws.state, WorkspaceState::Running, "{:?}", ws.reason);
    // The pool refills while the host is full: functions created ahead run nowhere.
    svc.fill_pool().await.unwrap();
    assert_eq!(svc.pool_status().await.unwrap()[0].ready, 2);

    // A second create waits in line for the host, and leaves the pool as it was.
    let updates = control.count("UpdateFunction");
    let two = svc.create(&alice, "two", "jupyter-python").await.unwrap();
    assert_eq!(two.state, WorkspaceState::Queued);
    assert_eq!(control.count("UpdateFunction"), updates);
    let status = svc.pool_status().await.unwrap();
    assert_eq!((status[0].ready, status[0].starting), (2, 0));
    assert_eq!(svc.list(&alice).await.unwrap().len(), 2);
    drop(svc);
    drop(db);
    tdb.drop_database().await;
}
