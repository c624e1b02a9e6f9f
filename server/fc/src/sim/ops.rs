//! The operations: validation of bodies as FC does it (required fields, grammars, enum values,
//! ranges), the state they change, and the JSON they answer with.

use super::{reply::Reject, State};
use serde_json::{json, Map, Value};
use std::time::Instant;

pub type Outcome = Result<(u16, Option<Value>), Reject>;

pub struct FunctionRecord {
    pub spec: Map<String, Value>,
    /// `Pending` until then: FC caches the image before a new function can run.
    pub active_at: Instant,
    /// The last update `InProgress` until then.
    pub updated_at: Instant,
    pub invocation_disabled: bool,
    pub provision: Option<i64>,
    pub triggers: Map<String, Value>,
    pub created: String,
}

fn now_text() -> String {
    crate::now_iso8601()
}

fn str_field<'a>(body: &'a Value, name: &str) -> Result<&'a str, Reject> {
    match body.get(name) {
        None | Some(Value::Null) => Err(Reject::invalid(format!("{name} is required"))),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(Reject::invalid(format!(
            "{name} must be a non-empty string"
        ))),
    }
}

fn one_of(name: &str, value: &str, allowed: &[&str]) -> Result<(), Reject> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(Reject::invalid(format!(
            "{name} {value:?} is not one of {allowed:?}"
        )))
    }
}

fn name_ok(name: &str, max: usize) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

fn body_object(body: &Value) -> Result<&Map<String, Value>, Reject> {
    body.as_object()
        .ok_or_else(|| Reject::invalid("the request body must be a JSON object"))
}

const RUNTIMES: [&str; 12] = [
    "custom-container",
    "custom",
    "custom.debian10",
    "custom.debian11",
    "custom.debian12",
    "python3.9",
    "python3.10",
    "python3.12",
    "nodejs18",
    "nodejs20",
    "java11",
    "go1",
];

fn check_function_fields(b: &Map<String, Value>) -> Result<(), Reject> {
    if let Some(m) = b.get("memorySize") {
        let m = m
            .as_u64()
            .ok_or_else(|| Reject::invalid("memorySize must be an integer"))?;
        if !(128..=32768).contains(&m) || m % 64 != 0 {
            return Err(Reject::invalid(
                "memorySize must be a multiple of 64 between 128 and 32768",
            ));
        }
    }
    if let Some(c) = b.get("cpu") {
        let c = c
            .as_f64()
            .ok_or_else(|| Reject::invalid("cpu must be a number"))?;
        if !(0.05..=16.0).contains(&c) || ((c * 100.0).round() as i64) % 5 != 0 {
            return Err(Reject::invalid(
                "cpu must be a multiple of 0.05 between 0.05 and 16",
            ));
        }
    }
    if let Some(d) = b.get("diskSize") {
        if !matches!(d.as_u64(), Some(512) | Some(10240)) {
            return Err(Reject::invalid("diskSize must be 512 or 10240"));
        }
    }
    if let Some(t) = b.get("timeout") {
        if !t.as_u64().is_some_and(|t| (1..=86400).contains(&t)) {
            return Err(Reject::invalid("timeout must be between 1 and 86400"));
        }
    }
    if let Some(c) = b.get("customContainerConfig") {
        str_field(c, "image")
            .map_err(|_| Reject::invalid("customContainerConfig.image is required"))?;
        if let Some(a) = c.get("accelerationType").and_then(Value::as_str) {
            one_of(
                "customContainerConfig.accelerationType",
                a,
                &["Default", "None", "default", "none"],
            )?;
        }
    }
    if let Some(n) = b.get("nasConfig") {
        let mounts = n
            .get("mountPoints")
            .and_then(Value::as_array)
            .ok_or_else(|| Reject::invalid("nasConfig.mountPoints is required"))?;
        if mounts.len() > 5 {
            return Err(Reject::invalid("at most 5 NAS mount points"));
        }
        for m in mounts {
            str_field(m, "serverAddr")?;
            str_field(m, "mountDir")?;
        }
        if !mounts.is_empty()
            && b.get("vpcConfig")
                .and_then(|v| v.get("vpcId"))
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            return Err(Reject::invalid("nasConfig needs vpcConfig"));
        }
    }
    Ok(())
}

impl State {
    pub fn function_json(&self, name: &str) -> Option<Value> {
        let f = self.functions.get(name)?;
        let now = Instant::now();
        let (active, updated) = (now >= f.active_at, now >= f.updated_at);
        let mut v = f.spec.clone();
        v.insert("functionName".into(), json!(name));
        v.insert(
            "functionArn".into(),
            json!(format!(
                "acs:fc:{}:{}:functions/{name}",
                self.region, self.account
            )),
        );
        v.insert(
            "functionId".into(),
            json!(format!("{:x}", name.len() as u64 * 2654435761u64)),
        );
        v.insert("createdTime".into(), json!(f.created));
        v.insert(
            "state".into(),
            json!(if active { "Active" } else { "Pending" }),
        );
        v.insert(
            "stateReasonCode".into(),
            json!(if active { "" } else { "Creating" }),
        );
        v.insert(
            "lastUpdateStatus".into(),
            json!(if updated { "Successful" } else { "InProgress" }),
        );
        Some(Value::Object(v))
    }

    pub fn create_function(&mut self, body: &Value) -> Outcome {
        let b = body_object(body)?;
        let name = str_field(body, "functionName")?;
        if !name_ok(name, 64) {
            return Err(Reject::invalid(format!("functionName {name:?} is invalid")));
        }
        one_of("runtime", str_field(body, "runtime")?, &RUNTIMES)?;
        str_field(body, "handler")?;
        if body["runtime"] == "custom-container" && b.get("customContainerConfig").is_none() {
            return Err(Reject::invalid(
                "customContainerConfig is required for runtime custom-container",
            ));
        }
        check_function_fields(b)?;
        if self.functions.contains_key(name) {
            return Err(Reject::new(
                409,
                "FunctionAlreadyExists",
                format!("function '{name}' already exists"),
            ));
        }
        self.functions.insert(
            name.to_string(),
            FunctionRecord {
                spec: b.clone(),
                active_at: Instant::now() + self.pending,
                updated_at: Instant::now() + self.pending,
                invocation_disabled: false,
                provision: None,
                triggers: Map::new(),
                created: now_text(),
            },
        );
        Ok((200, self.function_json(name)))
    }

    fn function(&mut self, name: &str) -> Result<&mut FunctionRecord, Reject> {
        self.functions
            .get_mut(name)
            .ok_or_else(|| Reject::not_found("FunctionNotFound", &format!("function '{name}'")))
    }

    pub fn get_function(&mut self, name: &str) -> Outcome {
        self.function(name)?;
        Ok((200, self.function_json(name)))
    }

    pub fn update_function(&mut self, name: &str, body: &Value) -> Outcome {
        let b = body_object(body)?.clone();
        let (pending, pending_update) = (self.pending, self.pending_update);
        let f = self.function(name)?;
        // What FC checks is the function as it would be (NAS needs the VPC it already has).
        let mut updated = f.spec.clone();
        for (k, v) in b {
            updated.insert(k, v);
        }
        check_function_fields(&updated)?;
        // A new image is cached again; other changes only roll the configuration out.
        let image = |spec: &Map<String, Value>| {
            spec.get("customContainerConfig")
                .map(|c| c["image"].clone())
        };
        let took = if image(&updated) != image(&f.spec) {
            pending
        } else {
            pending_update
        };
        f.spec = updated;
        f.updated_at = Instant::now() + took;
        Ok((200, self.function_json(name)))
    }

    pub fn delete_function(&mut self, name: &str) -> Outcome {
        let f = self.function(name)?;
        if !f.triggers.is_empty() {
            return Err(Reject::new(
                412,
                "FunctionNotEmpty",
                format!("function '{name}' has active triggers"),
            ));
        }
        self.functions.remove(name);
        Ok((204, None))
    }

    pub fn create_trigger(&mut self, function: &str, body: &Value) -> Outcome {
        body_object(body)?;
        let name = str_field(body, "triggerName")?.to_string();
        if !name_ok(&name, 128) {
            return Err(Reject::invalid(format!("triggerName {name:?} is invalid")));
        }
        let kind = str_field(body, "triggerType")?;
        one_of(
            "triggerType",
            kind,
            &[
                "http",
                "timer",
                "oss",
                "log",
                "mns_topic",
                "cdn_events",
                "tablestore",
                "eventbridge",
            ],
        )?;
        let config = str_field(body, "triggerConfig")?;
        let parsed: Value = serde_json::from_str(config)
            .map_err(|_| Reject::invalid("triggerConfig must be a JSON string"))?;
        if kind == "http" {
            if let Some(a) = parsed.get("authType").and_then(Value::as_str) {
                one_of(
                    "triggerConfig.authType",
                    a,
                    &["anonymous", "function", "jwt"],
                )?;
            }
            for m in parsed
                .get("methods")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                one_of(
                    "triggerConfig.methods",
                    m.as_str().unwrap_or(""),
                    &["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"],
                )?;
            }
        }
        let (region, account) = (self.region.clone(), self.account.clone());
        let f = self.function(function)?;
        if f.triggers.contains_key(&name) {
            return Err(Reject::new(
                409,
                "TriggerAlreadyExists",
                format!("trigger '{name}' already exists"),
            ));
        }
        let id = format!("{:016x}", rand::random::<u64>());
        let t = json!({
            "triggerName": name, "triggerType": kind, "triggerConfig": config, "triggerId": id,
            "qualifier": body.get("qualifier").cloned().unwrap_or(json!("LATEST")), "status": "OK",
            "targetArn": format!("acs:fc:{region}:{account}:functions/{function}"),
            "httpTrigger": {"urlInternet": format!("https://{function}-{id}.{region}.fcapp.run"), "urlIntranet": format!("https://{function}-{id}.{region}-vpc.fcapp.run")},
            "createdTime": now_text(),
        });
        f.triggers.insert(name, t.clone());
        Ok((200, Some(t)))
    }

    pub fn list_triggers(&mut self, function: &str) -> Outcome {
        let f = self.function(function)?;
        Ok((
            200,
            Some(json!({"triggers": f.triggers.values().cloned().collect::<Vec<_>>()})),
        ))
    }

    pub fn delete_trigger(&mut self, function: &str, trigger: &str) -> Outcome {
        let f = self.function(function)?;
        f.triggers
            .remove(trigger)
            .map(|_| (204, None))
            .ok_or_else(|| Reject::not_found("TriggerNotFound", &format!("trigger '{trigger}'")))
    }

    pub fn create_custom_domain(&mut self, body: &Value) -> Outcome {
        body_object(body)?;
        let name = str_field(body, "domainName")?.to_string();
        let protocol = body
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("HTTP");
        one_of("protocol", protocol, &["HTTP", "HTTPS", "HTTP,HTTPS"])?;
        if protocol.contains("HTTPS") {
            let cert = body
                .get("certConfig")
                .ok_or_else(|| Reject::invalid("certConfig is required for HTTPS"))?;
            for f in ["certName", "certificate", "privateKey"] {
                str_field(cert, f)
                    .map_err(|_| Reject::invalid(format!("certConfig.{f} is required")))?;
            }
        }
        let routes = body
            .get("routeConfig")
            .and_then(|r| r.get("routes"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for r in &routes {
            str_field(r, "path")?;
            let f = str_field(r, "functionName")?;
            if !self.functions.contains_key(f) {
                return Err(Reject::not_found(
                    "FunctionNotFound",
                    &format!("function '{f}'"),
                ));
            }
        }
        if self.domains.contains_key(&name) {
            return Err(Reject::new(
                409,
                "DomainNameAlreadyExists",
                format!("custom domain '{name}' already exists"),
            ));
        }
        let mut d = body.as_object().cloned().unwrap_or_default();
        d.remove("certConfig");
        d.insert("protocol".into(), json!(protocol));
        d.insert("accountId".into(), json!(self.account));
        d.insert("apiVersion".into(), json!("2023-03-30"));
        d.insert("createdTime".into(), json!(now_text()));
        let d = Value::Object(d);
        self.domains.insert(name, d.clone());
        Ok((200, Some(d)))
    }

    pub fn get_custom_domain(&mut self, name: &str) -> Outcome {
        self.domains
            .get(name)
            .map(|d| (200, Some(d.clone())))
            .ok_or_else(|| {
                Reject::not_found("DomainNameNotFound", &format!("custom domain '{name}'"))
            })
    }

    pub fn delete_custom_domain(&mut self, name: &str) -> Outcome {
        self.domains
            .remove(name)
            .map(|_| (204, None))
            .ok_or_else(|| {
                Reject::not_found("DomainNameNotFound", &format!("custom domain '{name}'"))
            })
    }

    pub fn put_provision_config(&mut self, function: &str, body: &Value) -> Outcome {
        body_object(body)?;
        let target = body
            .get("defaultTarget")
            .or_else(|| body.get("target"))
            .and_then(Value::as_i64)
            .ok_or_else(|| Reject::invalid("defaultTarget is required"))?;
        if !(0..=10000).contains(&target) {
            return Err(Reject::invalid("defaultTarget must be between 0 and 10000"));
        }
        let arn = format!(
            "acs:fc:{}:{}:functions/{function}",
            self.region, self.account
        );
        let f = self.function(function)?;
        f.provision = Some(target);
        Ok((
            200,
            Some(
                json!({"defaultTarget": target, "target": target, "current": target, "functionArn": arn, "alwaysAllocateCPU": true}),
            ),
        ))
    }

    pub fn get_provision_config(&mut self, function: &str) -> Outcome {
        let arn = format!(
            "acs:fc:{}:{}:functions/{function}",
            self.region, self.account
        );
        let f = self.function(function)?;
        let t = f.provision.unwrap_or(0);
        let current = if f.invocation_disabled { 0 } else { t };
        Ok((
            200,
            Some(json!({"defaultTarget": t, "target": t, "current": current, "functionArn": arn})),
        ))
    }

    pub fn delete_provision_config(&mut self, function: &str) -> Outcome {
        self.function(function)?.provision = None;
        Ok((204, None))
    }

    pub fn list_instances(&mut self, function: &str) -> Outcome {
        let f = self.function(function)?;
        let now = Instant::now();
        // Instances start from the function once its update is rolled out (before that, FC
        // would run the previous configuration).
        let running = !f.invocation_disabled
            && f.provision.unwrap_or(0) > 0
            && now >= f.active_at
            && now >= f.updated_at;
        let instances: Vec<Value> = if running {
            vec![
                json!({"instanceId": format!("c-{function}-1"), "versionId": "LATEST", "status": "Running"}),
            ]
        } else {
            Vec::new()
        };
        Ok((200, Some(json!({"instances": instances}))))
    }

    pub fn set_invocation(&mut self, function: &str, disabled: bool, body: &Value) -> Outcome {
        if disabled && !body.is_null() {
            body_object(body)?;
        }
        self.function(function)?.invocation_disabled = disabled;
        Ok((200, Some(json!({"success": true}))))
    }
}
