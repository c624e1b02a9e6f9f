//! Start-up wiring: the data dir, the database and its migrations, the keys, the workspace
//! runtime and service, and the workspace access rules, assembled into the [`AppState`] every
//! handler shares. `http` builds the router over it and serves.

use crate::secrets;
use anyhow::Context;
use qingting_core::{
    config::{FcProtocol, RuntimeKind},
    replicas::{self, feed::ChangeFeed},
    state::WorkspaceAccess,
    store, templates,
    workspaces::{
        fc::{FcRuntime, FcSite},
        local::{LocalOptions, LocalRuntime, Policy},
        runtime::Runtime,
        WorkspaceLimits, WorkspaceService,
    },
    AppState, Config,
};
use qingting_fc::{Credentials, FcClient};
use qingting_gateway::{
    access::Guard,
    cookie::CookieCodec,
    token::{TokenSigner, TokenVerifier},
};
use std::{sync::Arc, time::Duration};
use tower_sessions::session_store::ExpiredDeletion;

/// What start-up assembles: the shared state, and the key that signs session cookies.
pub struct Assembled {
    pub state: AppState,
    pub session_key: Vec<u8>,
}

/// Prepares the data dir, opens and migrates the database, loads or generates the keys and
/// builds the workspace service; also starts the hourly sweep of expired sessions.
pub async fn assemble(config: Config) -> anyhow::Result<Assembled> {
    // Every start passes here, whether its config came from `settings::load` or was built in
    // code: what follows relies on the checks.
    config
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid configuration")?;
    secrets::prepare_data_dir(&config.data_dir)?;
    let db_url = config.effective_database_url();
    let db = store::connect(&db_url)
        .await
        .context("cannot open the database")?;
    store::migrate(&db)
        .await
        .context("database migration failed")?;
    let session_key = secrets::load_or_generate(
        &config.data_dir,
        "session.key",
        config.session_secret.as_deref(),
        64,
    )?;

    let session_sweeper = store::DbSessionStore::new(db.clone());
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            if let Err(e) = session_sweeper.delete_expired().await {
                tracing::warn!("expired-session sweep failed: {e}");
            }
        }
    });

    if config.workspaces_same_site() {
        tracing::warn!(
            dashboard = %config.public_origin(),
            workspaces = %config.workspace_domain(),
            "workspaces are on the dashboard's own site: their pages can set cookies for it \
             and count as same-site. Serve them from a registrable domain of their own \
             (workspaces.domain); see docs/security.md"
        );
    }
    let workspaces = workspace_service(&db, &config)?;
    let access = workspace_access(&config, &db)?;
    let state = AppState::new(db, config, workspaces, access);
    Ok(Assembled { state, session_key })
}

/// The workspace service over the local runtime; fails where workspaces cannot be isolated
/// (unless the operator explicitly allowed running without a sandbox).
fn workspace_service(
    db: &store::DatabaseConnection,
    config: &Config,
) -> anyhow::Result<Arc<WorkspaceService>> {
    let templates = templates::load(config.templates_file.as_deref())?;
    let (runtime, local_editors): (Arc<dyn Runtime>, _) = match config.workspaces.runtime {
        RuntimeKind::Local => (Arc::new(local_runtime(config)?), Some(config.editors_dir())),
        RuntimeKind::Fc => (Arc::new(fc_runtime(config)?), None),
    };
    let isolation = runtime.isolation();
    if config.workspaces.local.insecure_no_sandbox
        && config.workspaces.runtime == RuntimeKind::Local
    {
        tracing::warn!(%isolation, "workspaces run WITHOUT a sandbox (--insecure-no-sandbox)");
    } else {
        tracing::info!(%isolation, runtime = runtime.name(), "workspace runtime");
    }
    let limits = WorkspaceLimits {
        max_per_user: config.workspaces.max_per_user,
        max_running_per_user: config.workspaces.max_running_per_user,
    };
    let max_running = config.effective_max_running();
    tracing::info!(
        max_running,
        "workspaces running at once on this server, at most"
    );
    let replica = replicas::replica_id(&config.data_dir).context("cannot read the replica id")?;
    let feed = ChangeFeed::new(db.clone(), replica.clone(), config.change_feed);
    tracing::info!(
        %replica,
        feed = feed.as_ref().map_or("in-process only (one replica)", ChangeFeed::describe),
        "replica"
    );
    Ok(Arc::new(
        WorkspaceService::new(db.clone(), runtime, templates, limits, local_editors)
            .with_max_running(max_running)
            .with_replica(replica, feed)
            .with_pool(config.pool_sizes().map_err(anyhow::Error::msg)?)
            .map_err(anyhow::Error::msg)?,
    ))
}

fn local_runtime(config: &Config) -> anyhow::Result<LocalRuntime> {
    let local = &config.workspaces.local;
    Ok(LocalRuntime::new(LocalOptions {
        data_dir: config.data_dir.clone(),
        editors_dir: config.editors_dir(),
        insecure_no_sandbox: local.insecure_no_sandbox,
        uid_base: local.uid_base,
        policy: Policy::default(),
        log_max_bytes: local.log_max_bytes,
        network: local.network,
        network_deny: local.network_deny.clone(),
    })?)
}

/// Function Compute: credentials from the config or the standard environment variables.
fn fc_runtime(config: &Config) -> anyhow::Result<FcRuntime> {
    let fc = &config.workspaces.fc;
    let creds = match (&fc.access_key_id, &fc.access_key_secret) {
        (Some(id), Some(secret)) => Credentials {
            access_key_id: id.clone(),
            access_key_secret: secret.clone(),
            security_token: fc.security_token.clone(),
        },
        _ => Credentials::from_env().context(
            "the fc runtime needs credentials: workspaces.fc.access_key_id/secret or ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET",
        )?,
    };
    let endpoint = match (&fc.endpoint, &fc.account_id) {
        (Some(endpoint), _) => endpoint.clone(),
        (None, Some(account)) => qingting_fc::endpoint_for(&fc.region, account),
        (None, None) => unreachable!("Config::validate asks for one of them"),
    };
    let cert = match (fc.protocol, &fc.cert_file, &fc.key_file) {
        (FcProtocol::Https, Some(cert), Some(key)) => {
            let read = |p: &std::path::Path| {
                std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
            };
            Some((read(cert)?, read(key)?))
        }
        (FcProtocol::Https, ..) => unreachable!("Config::validate asks for both files"),
        (FcProtocol::Http, ..) => None,
    };
    let public_key = hex::encode(workspace_signer(config)?.public_key());
    let site = FcSite {
        domain: config.workspace_domain(),
        dashboard_url: config.public_origin(),
        token_public_key: public_key,
        cert,
    };
    Ok(FcRuntime::new(
        FcClient::new(&endpoint, creds),
        fc.clone(),
        site,
    ))
}

fn workspace_signer(config: &Config) -> anyhow::Result<TokenSigner> {
    let seed: [u8; 32] = secrets::load_or_generate(
        &config.data_dir,
        "workspace-token.key",
        config.workspaces.token_secret.as_deref(),
        32,
    )?[..32]
        .try_into()
        .expect("32 bytes");
    Ok(TokenSigner::from_seed(&seed))
}

/// Token signing key and cookie key, generated into the data dir on first start.
fn workspace_access(
    config: &Config,
    db: &store::DatabaseConnection,
) -> anyhow::Result<WorkspaceAccess> {
    let cookie_key: [u8; 32] = secrets::load_or_generate(
        &config.data_dir,
        "workspace-cookie.key",
        config.workspaces.cookie_secret.as_deref(),
        32,
    )?[..32]
        .try_into()
        .expect("32 bytes");
    let signer = workspace_signer(config)?;
    let verifier = TokenVerifier::new(&signer.public_key()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let guard = Guard::new(
        verifier,
        Arc::new(store::used_tokens::DbUsedTokens::new(db.clone())),
        CookieCodec::new(cookie_key),
        config.is_https(),
        config.workspaces.cookie_hours * 3600,
        &config.public_origin(),
    );
    Ok(WorkspaceAccess { signer, guard })
}
