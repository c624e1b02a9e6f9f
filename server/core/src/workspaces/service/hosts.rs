//! The gateway's answer for a workspace host, `<user>-<name>` → the workspace, kept in memory:
//! a request through the gateway costs no query while nothing changes. Every change the
//! service announces (create, each state change, delete, and an owner's rename through
//! [`WorkspaceService::owner_changed`]), here or on another replica through the change feed,
//! empties it.

use super::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// Past this many hosts (most of them unknown names) the cache starts over.
const MAX_HOSTS: usize = 10_000;

#[derive(Debug, Default)]
pub(super) struct HostCache {
    answers: Mutex<Answers>,
    /// Bumped by every change: an answer read from the database before a change is not kept
    /// after it.
    generation: AtomicU64,
}

#[derive(Debug, Default)]
struct Answers {
    /// user → workspace name → answer (`None`: no such workspace). Nested so that a lookup
    /// borrows the host's two names instead of building a key.
    by_user: HashMap<String, HashMap<String, Option<GatewayTarget>>>,
    count: usize,
}

impl HostCache {
    fn get(&self, user: &str, name: &str) -> Option<Option<GatewayTarget>> {
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        answers.by_user.get(user)?.get(name).cloned()
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn insert(&self, seen_at: u64, user: &str, name: &str, answer: Option<GatewayTarget>) {
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        // Checked under the lock that `clear` takes too: no stale answer slips in after it.
        if self.generation() != seen_at {
            return;
        }
        if answers.count >= MAX_HOSTS {
            *answers = Answers::default();
        }
        let previous = answers
            .by_user
            .entry(user.to_string())
            .or_default()
            .insert(name.to_string(), answer);
        if previous.is_none() {
            answers.count += 1;
        }
    }

    pub(super) fn clear(&self) {
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        *answers = Answers::default();
    }
}

impl WorkspaceService {
    /// The workspace `<user>-<name>` names, for the gateway; `None` when either is unknown.
    pub async fn resolve(
        &self,
        user: &str,
        name: &str,
    ) -> Result<Option<GatewayTarget>, WorkspaceError> {
        if let Some(answer) = self.hosts.get(user, name) {
            return Ok(answer);
        }
        let seen_at = self.hosts.generation();
        let answer = self.resolve_uncached(user, name).await?;
        self.hosts.insert(seen_at, user, name, answer.clone());
        Ok(answer)
    }

    async fn resolve_uncached(
        &self,
        user: &str,
        name: &str,
    ) -> Result<Option<GatewayTarget>, WorkspaceError> {
        let Some(owner) = accounts::find_by_username(&self.db, user).await? else {
            return Ok(None);
        };
        let Some(row) = workspace::Entity::find()
            .filter(workspace::Column::UserId.eq(owner.id))
            .filter(workspace::Column::Name.eq(name))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let endpoint = self.runtime.endpoint(row.id, &runtime_state(&row));
        let shared_ports = self.port_shares(row.id).await?;
        Ok(Some(GatewayTarget {
            id: row.id,
            owner_id: owner.id,
            state: state_of(&row),
            endpoint,
            shared_ports,
        }))
    }

    /// Something about user `user_id`'s workspaces changed (or the user did: a new name, a
    /// deleted account): the gateway's answers start over, the dashboards' live lists reload,
    /// and the other replicas hear of it.
    pub fn owner_changed(&self, user_id: i64) {
        self.heard(Changed::User(user_id));
        if let Some(feed) = self.feed.clone() {
            tokio::spawn(async move {
                if let Err(e) = feed.publish(user_id).await {
                    tracing::warn!("cannot announce a change to the other replicas: {e}");
                }
            });
        }
    }

    /// A change made here or announced by another replica: forget and reload.
    pub fn heard(&self, change: Changed) {
        self.hosts.clear();
        let _ = self.changes.send(change);
    }
}
