//! The JSON shapes of the FC 3.0 operations the `fc` runtime uses (API 2023-03-30), as the
//! official SDK names them. Optional fields are left out when unset, so the same types
//! serve create (full) and update (partial) bodies, and unknown response fields are ignored.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateFunctionInput {
    pub function_name: String,
    pub runtime: String,
    pub handler: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_container_config: Option<CustomContainerConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_variables: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nas_config: Option<NasConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_config: Option<VpcConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_access: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_lifecycle_config: Option<InstanceLifecycleConfig>,
}

/// UpdateFunction takes the same fields, all optional (only those sent change).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateFunctionInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_container_config: Option<CustomContainerConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_variables: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nas_config: Option<NasConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomContainerConfig {
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// `Default` (image acceleration on) or `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acceleration_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_config: Option<HealthCheckConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckConfig {
    pub http_get_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NasConfig {
    pub user_id: i64,
    pub group_id: i64,
    pub mount_points: Vec<NasMountConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NasMountConfig {
    pub server_addr: String,
    pub mount_dir: String,
    #[serde(rename = "enableTLS", default)]
    pub enable_tls: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VpcConfig {
    pub vpc_id: String,
    pub v_switch_ids: Vec<String>,
    pub security_group_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceLifecycleConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initializer: Option<LifecycleHook>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<LifecycleHook>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleHook {
    pub handler: String,
    pub timeout: u32,
}

/// A function as Create/Get/UpdateFunction answer it (the fields the runtime reads).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Function {
    pub function_name: String,
    pub function_arn: String,
    pub function_id: String,
    /// `Pending`, `Active` or `Failed`.
    pub state: String,
    pub state_reason: String,
    /// `Successful`, `Failed` or `InProgress`.
    pub last_update_status: String,
    pub last_update_status_reason: String,
    pub memory_size: u32,
    pub cpu: f64,
    pub timeout: u32,
    pub custom_container_config: Option<CustomContainerConfig>,
    pub environment_variables: BTreeMap<String, String>,
    pub description: String,
    pub nas_config: Option<NasConfig>,
}

impl Function {
    /// Created and updated: ready for traffic.
    pub fn settled(&self) -> bool {
        self.state != "Pending" && self.last_update_status != "InProgress"
    }

    pub fn failed(&self) -> bool {
        self.state == "Failed" || self.last_update_status == "Failed"
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTriggerInput {
    pub trigger_name: String,
    /// `http`
    pub trigger_type: String,
    /// JSON text of [`HttpTriggerConfig`] (FC wants a string here).
    pub trigger_config: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpTriggerConfig {
    /// `anonymous` or `function`.
    pub auth_type: String,
    pub methods: Vec<String>,
    #[serde(rename = "disableURLInternet", default)]
    pub disable_url_internet: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Trigger {
    pub trigger_name: String,
    pub trigger_type: String,
    pub trigger_config: String,
    pub trigger_id: String,
    pub qualifier: String,
    pub status: String,
    pub http_trigger: Option<HttpTriggerUrls>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpTriggerUrls {
    pub url_internet: String,
    pub url_intranet: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListTriggersOutput {
    pub triggers: Vec<Trigger>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCustomDomainInput {
    pub domain_name: String,
    /// `HTTP`, `HTTPS` or `HTTP,HTTPS`.
    pub protocol: String,
    pub route_config: RouteConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_config: Option<CertConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteConfig {
    pub routes: Vec<PathConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathConfig {
    pub path: String,
    pub function_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertConfig {
    pub cert_name: String,
    pub certificate: String,
    pub private_key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomDomain {
    pub domain_name: String,
    pub protocol: String,
    pub route_config: Option<RouteConfig>,
    pub account_id: String,
    pub api_version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutProvisionConfigInput {
    pub default_target: i64,
    #[serde(rename = "alwaysAllocateCPU", skip_serializing_if = "Option::is_none")]
    pub always_allocate_cpu: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProvisionConfig {
    pub default_target: i64,
    pub target: i64,
    pub current: i64,
    pub current_error: String,
    pub function_arn: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListInstancesOutput {
    pub instances: Vec<InstanceInfo>,
    pub request_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InstanceInfo {
    pub instance_id: String,
    pub version_id: String,
    pub status: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisableFunctionInvocationInput {
    pub abort_ongoing_request: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_names_match_the_sdk() {
        let f = CreateFunctionInput {
            function_name: "ws-7".into(),
            runtime: "custom-container".into(),
            handler: "index.handler".into(),
            memory_size: Some(2048),
            nas_config: Some(NasConfig {
                user_id: 1000,
                group_id: 1000,
                mount_points: vec![NasMountConfig {
                    server_addr: "n.nas.aliyuncs.com:/u/a/7".into(),
                    mount_dir: "/workspace".into(),
                    enable_tls: false,
                }],
            }),
            vpc_config: Some(VpcConfig {
                vpc_id: "vpc-1".into(),
                v_switch_ids: vec!["vsw-1".into()],
                security_group_id: "sg-1".into(),
            }),
            instance_lifecycle_config: Some(InstanceLifecycleConfig {
                initializer: None,
                pre_stop: Some(LifecycleHook {
                    handler: "pre-stop".into(),
                    timeout: 60,
                }),
            }),
            ..Default::default()
        };
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["functionName"], "ws-7");
        assert_eq!(v["memorySize"], 2048);
        assert_eq!(v["nasConfig"]["mountPoints"][0]["enableTLS"], false);
        assert_eq!(v["vpcConfig"]["vSwitchIds"][0], "vsw-1");
        assert_eq!(
            v["instanceLifecycleConfig"]["preStop"]["handler"],
            "pre-stop"
        );
        assert!(v.get("cpu").is_none(), "unset fields are left out");
        let t = HttpTriggerConfig {
            auth_type: "anonymous".into(),
            methods: vec!["GET".into()],
            disable_url_internet: true,
        };
        assert_eq!(
            serde_json::to_value(&t).unwrap()["disableURLInternet"],
            true
        );
        let p = PutProvisionConfigInput {
            default_target: 1,
            always_allocate_cpu: Some(true),
        };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"defaultTarget": 1, "alwaysAllocateCPU": true})
        );
    }

    #[test]
    fn responses_tolerate_unknown_and_missing_fields() {
        let f: Function = serde_json::from_value(json!({"functionName": "ws-7", "state": "Pending", "lastUpdateStatus": "InProgress", "codeSize": 0, "newField": {"x": 1}})).unwrap();
        assert!(!f.settled() && !f.failed());
        let t: Trigger = serde_json::from_value(
            json!({"triggerName": "http", "httpTrigger": {"urlInternet": "https://x.fcapp.run"}}),
        )
        .unwrap();
        assert_eq!(t.http_trigger.unwrap().url_internet, "https://x.fcapp.run");
    }
}
