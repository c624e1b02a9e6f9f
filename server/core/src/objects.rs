//! Object storage for user files (avatars today): one small trait, a directory under the data
//! dir (the default) and S3-compatible storage (AWS S3, Alibaba OSS, MinIO, …).

use async_trait::async_trait;
use bytes::Bytes;
use std::{fmt::Debug, path::PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object key {0:?} is not valid")]
    BadKey(String),
    #[error("object store: {0}")]
    Backend(String),
}

/// Keys are server-chosen: `[a-z0-9]+(/[a-z0-9]+)*(\.[a-z0-9]+)?` segments, never user input.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 200
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        })
}

#[async_trait]
pub trait ObjectStore: Send + Sync + Debug {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), ObjectError>;
    /// The object's bytes and content type, or `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<(Bytes, String)>, ObjectError>;
    /// Deleting an absent object is not an error.
    async fn delete(&self, key: &str) -> Result<(), ObjectError>;
}

/// Files under a directory; the content type is derived from the extension.
#[derive(Debug)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn path(&self, key: &str) -> Result<PathBuf, ObjectError> {
        if !valid_key(key) {
            return Err(ObjectError::BadKey(key.into()));
        }
        Ok(self.root.join(key))
    }
}

fn content_type_for(key: &str) -> &'static str {
    match key.rsplit('.').next() {
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        _ => "application/octet-stream",
    }
}

fn io(e: std::io::Error) -> ObjectError {
    ObjectError::Backend(e.to_string())
}

#[async_trait]
impl ObjectStore for DirStore {
    async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<(), ObjectError> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        // Write aside then rename: readers never see half an object.
        let tmp = path.with_extension(format!("tmp{}", rand::random::<u32>()));
        tokio::fs::write(&tmp, &body).await.map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)
    }

    async fn get(&self, key: &str) -> Result<Option<(Bytes, String)>, ObjectError> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(b) => Ok(Some((b.into(), content_type_for(key).to_string()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }
}

/// S3 or an S3-compatible service through aws-sdk-s3.
#[derive(Debug)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3Store {
    pub fn new(cfg: &crate::config::S3Config) -> Self {
        use aws_sdk_s3::config::{
            Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
        };
        // `Config::validate` requires both keys with the s3 backend.
        let creds = Credentials::new(
            cfg.access_key_id.clone().unwrap_or_default(),
            cfg.secret_access_key.clone().unwrap_or_default(),
            None,
            None,
            "qingting-config",
        );
        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .credentials_provider(creds)
            .force_path_style(cfg.path_style)
            // Alibaba OSS rejects the aws-chunked uploads that newer SDKs send by default.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &cfg.endpoint {
            b = b.endpoint_url(endpoint.clone());
        }
        Self {
            client: aws_sdk_s3::Client::from_conf(b.build()),
            bucket: cfg.bucket.clone(),
            prefix: cfg.prefix.trim_matches('/').to_string(),
        }
    }

    fn full_key(&self, key: &str) -> Result<String, ObjectError> {
        if !valid_key(key) {
            return Err(ObjectError::BadKey(key.into()));
        }
        Ok(if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        })
    }
}

fn s3err(e: impl std::error::Error) -> ObjectError {
    // DisplayErrorContext includes the service's code and message, not just "service error".
    ObjectError::Backend(aws_sdk_s3::error::DisplayErrorContext(e).to_string())
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), ObjectError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key)?)
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .map_err(s3err)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<(Bytes, String)>, ObjectError> {
        let res = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key)?)
            .send()
            .await;
        match res {
            Ok(out) => {
                let ct = out
                    .content_type()
                    .unwrap_or(content_type_for(key))
                    .to_string();
                let body = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| ObjectError::Backend(e.to_string()))?;
                Ok(Some((body.into_bytes(), ct)))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(s3err(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key)?)
            .send()
            .await
            .map_err(s3err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::valid_key;

    #[test]
    fn keys() {
        assert!(valid_key("avatars/0a1b.png"));
        for bad in [
            "",
            "../x",
            "a//b",
            "/a",
            "a/",
            "A.png",
            "a/.hidden",
            "a b",
            "a\\b",
        ] {
            assert!(!valid_key(bad), "{bad:?}");
        }
    }
}
