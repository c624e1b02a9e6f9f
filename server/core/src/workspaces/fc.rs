//! The `fc` runtime: one Function Compute 3.0 custom-container function per workspace, its
//! image's `qingting-shell` guarding the IDE, NAS mounts for `files` and `ide`, an anonymous
//! HTTP trigger with the internet URL disabled, and a custom domain `<user>-<ws>.<domain>`.
//!
//! Provision is two serial round trips before waiting for readiness: CreateFunction, then
//! CreateTrigger and CreateCustomDomain concurrently. Every step treats "already exists" as
//! done (adopting what an interrupted attempt left), and destroy treats "not found" as done,
//! so the reconciler can finish or undo any half-done create after a crash.
//!
//! A pooled workspace (`workspaces.pool`) is a function created ahead with no owner: no
//! identity in its environment (its shell refuses to start without one), no NAS, no custom
//! domain, invocation disabled. A create that takes it hands it over (`hand_over`):
//! UpdateFunction with the owner's environment and NAS, and CreateCustomDomain, concurrently,
//! then the usual start.

use super::{
    runtime::{Endpoint, Observed, Runtime, RuntimeError, WorkspaceSpec},
    POOL_OWNER,
};
use crate::config::{FcProtocol, FcRuntimeConfig};
use async_trait::async_trait;
use qingting_fc::{model::*, FcClient, FcError, FcErrorKind};
use serde_json::{json, Value};
use std::{collections::BTreeMap, time::Duration};

/// What the functions need to know about this installation.
#[derive(Debug, Clone)]
pub struct FcSite {
    /// Workspaces live at `<user>-<ws>.<domain>`.
    pub domain: String,
    /// The dashboard's origin (where the shell sends browsers without a workspace cookie).
    pub dashboard_url: String,
    /// The dashboard's token public key, hex.
    pub token_public_key: String,
    /// PEM certificate and key for HTTPS custom domains.
    pub cert: Option<(String, String)>,
}

#[derive(Debug)]
pub struct FcRuntime {
    client: FcClient,
    cfg: FcRuntimeConfig,
    site: FcSite,
    /// How often and how long to wait for a function to settle, or an instance to appear.
    pub poll: Duration,
    pub settle_timeout: Duration,
}

/// The runtime state of a provisioned function: with its custom domain once it has an owner,
/// else marked `pooled` (`hand_over` gives it one).
fn provisioned(function: &str, domain: Option<&str>) -> Value {
    match domain {
        Some(domain) => json!({ "function": function, "trigger": "http", "domain": domain }),
        None => json!({ "function": function, "trigger": "http", "pooled": true }),
    }
}

fn err(e: FcError) -> RuntimeError {
    RuntimeError(e.to_string())
}

/// `Ok` for "already exists" (adopted) or "not found" (already gone), per `ok_kind`.
fn tolerate<T>(r: Result<T, FcError>, ok_kind: FcErrorKind) -> Result<(), RuntimeError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.kind == ok_kind => Ok(()),
        Err(e) => Err(err(e)),
    }
}

impl FcRuntime {
    pub fn new(client: FcClient, cfg: FcRuntimeConfig, site: FcSite) -> Self {
        Self {
            client,
            cfg,
            site,
            poll: Duration::from_millis(500),
            settle_timeout: Duration::from_secs(40 * 60),
        }
    }

    pub fn function_name(&self, ws: &WorkspaceSpec) -> String {
        format!("{}-ws-{}", self.cfg.function_prefix, ws.id)
    }

    pub fn domain_name(&self, ws: &WorkspaceSpec) -> String {
        format!("{}-{}.{}", ws.owner, ws.name, self.site.domain)
    }

    fn image(&self, ws: &WorkspaceSpec) -> String {
        let image = if ws.template.image.is_empty() {
            &ws.template.id
        } else {
            &ws.template.image
        };
        match &self.cfg.image_registry {
            Some(registry) if !image.contains('/') => format!(
                "{}/{image}:{}",
                registry.trim_end_matches('/'),
                self.cfg.image_tag
            ),
            _ => image.clone(),
        }
    }

    fn description(ws: &WorkspaceSpec) -> String {
        match Self::pooled(ws) {
            true => "QingTing Studio workspace created ahead (pool)".into(),
            false => format!("QingTing Studio workspace {}-{}", ws.owner, ws.name),
        }
    }

    /// A workspace of the pool, with no owner yet.
    fn pooled(ws: &WorkspaceSpec) -> bool {
        ws.owner_id == POOL_OWNER
    }

    /// The function's environment: what the shell needs, with the owner's identity only
    /// when there is an owner.
    fn environment(&self, ws: &WorkspaceSpec) -> BTreeMap<String, String> {
        let identity = [
            ("QINGTING_WORKSPACE_ID", ws.id.to_string()),
            ("QINGTING_OWNER_ID", ws.owner_id.to_string()),
            ("QINGTING_OWNER", ws.owner.clone()),
            ("QINGTING_WORKSPACE", ws.name.clone()),
            // The IDE runs as its owner's own uid, the one owning their files on the NAS.
            ("QINGTING_IDE_UID", self.tenant_uid(ws).to_string()),
        ];
        let site = [
            (
                "QINGTING_TOKEN_PUBLIC_KEY",
                self.site.token_public_key.clone(),
            ),
            ("QINGTING_DASHBOARD_URL", self.site.dashboard_url.clone()),
            (
                "QINGTING_PUBLIC_SCHEME",
                match self.cfg.protocol {
                    FcProtocol::Https => "https",
                    FcProtocol::Http => "http",
                }
                .into(),
            ),
            ("QINGTING_HEALTH_PATH", ws.template.health_path.clone()),
            // The shell cannot see dashboard sign-outs: keep its cookies short-lived.
            ("QINGTING_COOKIE_HOURS", "1".to_string()),
        ];
        let identity = (!Self::pooled(ws))
            .then_some(identity)
            .into_iter()
            .flatten();
        site.into_iter()
            .chain(identity)
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    /// The owner's two NAS directories, mounted as their uid (none for a pooled workspace).
    fn nas(&self, ws: &WorkspaceSpec) -> Option<NasConfig> {
        if Self::pooled(ws) {
            return None;
        }
        self.cfg.nas_server.as_ref().map(|server| {
            let base = format!("{}/{}/{}", server.trim_end_matches('/'), ws.owner, ws.id);
            NasConfig {
                user_id: self.tenant_uid(ws),
                group_id: self.tenant_uid(ws),
                mount_points: vec![
                    NasMountConfig {
                        server_addr: format!("{base}/files"),
                        mount_dir: "/workspace".into(),
                        enable_tls: false,
                    },
                    NasMountConfig {
                        server_addr: format!("{base}/ide"),
                        mount_dir: "/ide".into(),
                        enable_tls: false,
                    },
                ],
            }
        })
    }

    /// The CreateFunction body for a workspace.
    pub fn function_input(&self, ws: &WorkspaceSpec) -> CreateFunctionInput {
        // FC wants a multiple of 64 MB, and 1 vCPU for every 1–4 GB.
        let memory = (ws.template.memory_mb.max(128).div_ceil(64) * 64) as u32;
        let cpu = ((memory as f64 / 2048.0).clamp(0.25, 16.0) * 20.0).round() / 20.0;
        let vpc = self.cfg.vpc_id.as_ref().map(|vpc_id| VpcConfig {
            vpc_id: vpc_id.clone(),
            v_switch_ids: self.cfg.vswitch_ids.clone(),
            security_group_id: self.cfg.security_group_id.clone().unwrap_or_default(),
        });
        CreateFunctionInput {
            function_name: self.function_name(ws),
            runtime: "custom-container".into(),
            // Ignored for custom containers, but required.
            handler: "index.handler".into(),
            description: Some(Self::description(ws)),
            custom_container_config: Some(CustomContainerConfig {
                image: self.image(ws),
                port: Some(9000),
                acceleration_type: Some("Default".into()),
                health_check_config: Some(HealthCheckConfig {
                    http_get_url: "/_qingting/health".into(),
                    initial_delay_seconds: Some(1),
                    period_seconds: Some(5),
                    timeout_seconds: Some(3),
                    failure_threshold: Some(3),
                }),
                ..Default::default()
            }),
            cpu: Some(cpu),
            memory_size: Some(memory),
            disk_size: Some(512),
            // The longest FC allows: a WebSocket lasts at most this long.
            timeout: Some(86400),
            // One instance serves the whole workspace (all its tabs and sockets).
            instance_concurrency: Some(200),
            environment_variables: Some(self.environment(ws)),
            nas_config: self.nas(ws),
            vpc_config: vpc,
            role: self.cfg.role.clone(),
            internet_access: Some(false),
            instance_lifecycle_config: Some(InstanceLifecycleConfig {
                initializer: Some(LifecycleHook {
                    handler: "initialize".into(),
                    timeout: 120,
                }),
                pre_stop: Some(LifecycleHook {
                    handler: "pre-stop".into(),
                    timeout: 60,
                }),
            }),
        }
    }

    /// The uid (and gid) of the workspace owner's data on the NAS and of their IDE.
    fn tenant_uid(&self, ws: &WorkspaceSpec) -> i64 {
        self.cfg.nas_uid_base + ws.owner_id
    }

    fn trigger_input() -> CreateTriggerInput {
        CreateTriggerInput {
            trigger_name: "http".into(),
            trigger_type: "http".into(),
            trigger_config: serde_json::to_string(&HttpTriggerConfig {
                // The shell does the authorization; the FC URL itself is never used.
                auth_type: "anonymous".into(),
                methods: ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]
                    .map(String::from)
                    .to_vec(),
                disable_url_internet: true,
            })
            .expect("serializable"),
            qualifier: Some("LATEST".into()),
        }
    }

    fn domain_input(&self, ws: &WorkspaceSpec) -> CreateCustomDomainInput {
        CreateCustomDomainInput {
            domain_name: self.domain_name(ws),
            protocol: self.cfg.protocol.as_str().into(),
            route_config: RouteConfig {
                routes: vec![PathConfig {
                    path: "/*".into(),
                    function_name: self.function_name(ws),
                    qualifier: Some("LATEST".into()),
                    methods: Vec::new(),
                }],
            },
            cert_config: self.site.cert.as_ref().map(|(cert, key)| CertConfig {
                cert_name: self.cfg.cert_name.clone(),
                certificate: cert.clone(),
                private_key: key.clone(),
            }),
        }
    }

    async fn wait_settled(&self, function: &str) -> Result<(), RuntimeError> {
        let deadline = tokio::time::Instant::now() + self.settle_timeout;
        loop {
            let f = self.client.get_function(function).await.map_err(err)?;
            if f.failed() {
                return Err(RuntimeError(format!(
                    "Function Compute could not deploy the function: {} {}",
                    f.state_reason, f.last_update_status_reason
                )));
            }
            if f.settled() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(RuntimeError(
                    "the function did not become active in time".into(),
                ));
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}

#[async_trait]
impl Runtime for FcRuntime {
    fn name(&self) -> &'static str {
        "fc"
    }

    async fn provision(&self, ws: &WorkspaceSpec) -> Result<Value, RuntimeError> {
        let function = self.function_name(ws);
        // An earlier, interrupted attempt may have created it: adopt it.
        tolerate(
            self.client.create_function(&self.function_input(ws)).await,
            FcErrorKind::AlreadyExists,
        )?;
        let trigger = Self::trigger_input();
        if Self::pooled(ws) {
            // Nothing may reach it before it has an owner.
            let disable = DisableFunctionInvocationInput {
                abort_ongoing_request: true,
                reason: Some("created ahead; no owner yet".into()),
            };
            let (t, d) = tokio::join!(
                self.client.create_trigger(&function, &trigger),
                self.client.disable_function_invocation(&function, &disable)
            );
            tolerate(t, FcErrorKind::AlreadyExists)?;
            d.map_err(err)?;
            self.wait_settled(&function).await?;
            return Ok(provisioned(&function, None));
        }
        let domain = self.domain_input(ws);
        let (t, d) = tokio::join!(
            self.client.create_trigger(&function, &trigger),
            self.client.create_custom_domain(&domain)
        );
        tolerate(t, FcErrorKind::AlreadyExists)?;
        tolerate(d, FcErrorKind::AlreadyExists)?;
        self.wait_settled(&function).await?;
        Ok(provisioned(&function, Some(&domain.domain_name)))
    }

    fn pool_starts_ides(&self) -> bool {
        false
    }

    async fn hand_over(
        &self,
        ws: &WorkspaceSpec,
        state: &Value,
    ) -> Result<Option<Value>, RuntimeError> {
        if state.get("pooled") != Some(&Value::Bool(true)) {
            return Ok(None);
        }
        let function = self.function_name(ws);
        let owner = UpdateFunctionInput {
            description: Some(Self::description(ws)),
            environment_variables: Some(self.environment(ws)),
            nas_config: self.nas(ws),
            ..Default::default()
        };
        let domain = self.domain_input(ws);
        let (u, d) = tokio::join!(
            self.client.update_function(&function, &owner),
            self.client.create_custom_domain(&domain)
        );
        u.map_err(err)?;
        tolerate(d, FcErrorKind::AlreadyExists)?;
        // Instances must start from the updated function, never the ownerless one.
        self.wait_settled(&function).await?;
        Ok(Some(provisioned(&function, Some(&domain.domain_name))))
    }

    async fn start(&self, ws: &WorkspaceSpec, _state: &Value) -> Result<(), RuntimeError> {
        let function = self.function_name(ws);
        let keep_one = PutProvisionConfigInput {
            default_target: 1,
            always_allocate_cpu: Some(true),
        };
        let (p, e) = tokio::join!(
            self.client
                .put_provision_config(&function, "LATEST", &keep_one),
            self.client.enable_function_invocation(&function)
        );
        p.map_err(err)?;
        e.map_err(err)?;
        // Running once FC reports the provisioned instance (its health check passed).
        let deadline = tokio::time::Instant::now() + self.settle_timeout;
        loop {
            if !self
                .client
                .list_instances(&function)
                .await
                .map_err(err)?
                .instances
                .is_empty()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                let pc = self
                    .client
                    .get_provision_config(&function, "LATEST")
                    .await
                    .map_err(err)?;
                return Err(RuntimeError(format!(
                    "no instance started: {}",
                    pc.current_error
                )));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    async fn stop(&self, ws: &WorkspaceSpec, _state: &Value) -> Result<(), RuntimeError> {
        let function = self.function_name(ws);
        let disable = DisableFunctionInvocationInput {
            abort_ongoing_request: true,
            reason: Some("workspace stopped".into()),
        };
        let (p, d) = tokio::join!(
            self.client.delete_provision_config(&function, "LATEST"),
            self.client.disable_function_invocation(&function, &disable)
        );
        tolerate(p, FcErrorKind::NotFound)?;
        tolerate(d, FcErrorKind::NotFound)
    }

    async fn status(&self, ws: &WorkspaceSpec, _state: &Value) -> Result<Observed, RuntimeError> {
        let function = self.function_name(ws);
        match self.client.list_instances(&function).await {
            Ok(l) if !l.instances.is_empty() => Ok(Observed::Running),
            Ok(_) => Ok(Observed::Stopped),
            Err(e) if e.kind == FcErrorKind::NotFound => Ok(Observed::Missing),
            Err(e) => Err(err(e)),
        }
    }

    async fn destroy(&self, ws: &WorkspaceSpec, _state: &Value) -> Result<(), RuntimeError> {
        let function = self.function_name(ws);
        // FC refuses to delete a function that still has triggers: domain, triggers, function.
        // A pooled workspace has no domain.
        if !Self::pooled(ws) {
            tolerate(
                self.client
                    .delete_custom_domain(&self.domain_name(ws))
                    .await,
                FcErrorKind::NotFound,
            )?;
        }
        match self.client.list_triggers(&function).await {
            Ok(list) => {
                for t in list.triggers {
                    tolerate(
                        self.client.delete_trigger(&function, &t.trigger_name).await,
                        FcErrorKind::NotFound,
                    )?;
                }
            }
            Err(e) if e.kind == FcErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(err(e)),
        }
        tolerate(
            self.client.delete_function(&function).await,
            FcErrorKind::NotFound,
        )
    }

    /// Traffic reaches FC's custom domain directly (wildcard DNS), not this server.
    fn endpoint(&self, _workspace_id: i64, _state: &Value) -> Option<Endpoint> {
        None
    }

    fn port_endpoint(&self, _workspace_id: i64, _port: u16) -> Result<Endpoint, String> {
        // The function's HTTP trigger reaches only the shell's port; docs/deploy-fc.md says
        // what a preview would take there.
        Err(
            "port previews are not available on Function Compute yet: a function answers on \
             one port only (docs/deploy-fc.md)"
                .into(),
        )
    }

    fn traffic_through_gateway(&self) -> bool {
        false
    }

    fn isolation(&self) -> Value {
        json!({
            "sandbox": "Function Compute instance per workspace (custom container)",
            "guard": "qingting-shell in the image (token public key only)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qingting_fc::Credentials;

    #[test]
    fn the_function_carries_what_the_shell_needs_and_no_secret() {
        let client = FcClient::new(
            "http://127.0.0.1:1",
            Credentials {
                access_key_id: "AKID".into(),
                access_key_secret: "SECRET-VALUE".into(),
                security_token: None,
            },
        );
        let cfg = FcRuntimeConfig {
            image_registry: Some("registry-vpc.cn-hangzhou.aliyuncs.com/qingting".into()),
            image_tag: "v1".into(),
            nas_server: Some("nas.example.com:/qingting/".into()),
            vpc_id: Some("vpc-1".into()),
            ..FcRuntimeConfig::default()
        };
        let site = FcSite {
            domain: "ws.example.com".into(),
            dashboard_url: "https://studio.example.com".into(),
            token_public_key: "ab".repeat(32),
            cert: None,
        };
        let rt = FcRuntime::new(client, cfg, site);
        let mut template = crate::templates::builtin().remove(2);
        template.memory_mb = 1000;
        let ws = WorkspaceSpec {
            id: 7,
            owner_id: 3,
            owner: "alice".into(),
            name: "nb".into(),
            template,
        };
        let f = rt.function_input(&ws);
        assert_eq!(f.function_name, "qingting-ws-7");
        assert_eq!(f.memory_size, Some(1024), "rounded up to a multiple of 64");
        assert_eq!(f.timeout, Some(86400));
        assert_eq!(
            f.custom_container_config.as_ref().unwrap().image,
            "registry-vpc.cn-hangzhou.aliyuncs.com/qingting/jupyter-python:v1"
        );
        let mounts = &f.nas_config.as_ref().unwrap().mount_points;
        assert_eq!(
            mounts[0].server_addr,
            "nas.example.com:/qingting/alice/7/files"
        );
        assert_eq!(
            (mounts[0].mount_dir.as_str(), mounts[1].mount_dir.as_str()),
            ("/workspace", "/ide")
        );
        // Each tenant has an identity of its own on the shared export, and its IDE runs as it.
        let nas = f.nas_config.as_ref().unwrap();
        assert_eq!((nas.user_id, nas.group_id), (100_003, 100_003));
        let other = rt.function_input(&WorkspaceSpec {
            owner_id: 4,
            owner: "bob".into(),
            ..ws.clone()
        });
        assert_eq!(other.nas_config.as_ref().unwrap().user_id, 100_004);
        assert_eq!(
            other.nas_config.as_ref().unwrap().mount_points[0].server_addr,
            "nas.example.com:/qingting/bob/7/files"
        );
        let env = f.environment_variables.as_ref().unwrap();
        assert_eq!(env["QINGTING_WORKSPACE_ID"], "7");
        assert_eq!(env["QINGTING_OWNER_ID"], "3");
        assert_eq!(env["QINGTING_IDE_UID"], "100003");
        assert_eq!(env["QINGTING_TOKEN_PUBLIC_KEY"], "ab".repeat(32));
        let all = serde_json::to_string(&f).unwrap();
        assert!(
            !all.contains("SECRET-VALUE") && !all.contains("AKID"),
            "no credential reaches a function"
        );
        assert_eq!(rt.domain_name(&ws), "alice-nb.ws.example.com");
    }
}
