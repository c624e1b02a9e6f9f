//! `/settings/tokens`: personal API tokens for scripts and the `qingting` CLI. A new token's
//! secret is shown once, right after it is made.

use crate::{
    api::settings::{my_tokens, CreateToken, RevokeToken, TokenRow},
    auth::{action_error, RequireUser},
    components::form::FormAlert,
};
use leptos::prelude::*;
use leptos_meta::Title;

use super::settings::SettingsTabs;

#[component]
pub fn TokensSettingsPage() -> impl IntoView {
    view! {
        <Title text="API tokens · QingTing Studio" />
        <RequireUser>
            <TokensSettings />
        </RequireUser>
    }
}

#[component]
fn TokensSettings() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| my_tokens(),
    );
    view! {
        <div class="page-head"><h1>"Settings"</h1></div>
        <SettingsTabs />
        <section class="card settings-section">
            <h2>"New API token"</h2>
            <p class="muted">"For scripts and the command line: "<code>"qingting login --url <this site's address>"</code>" asks for one."</p>
            <ActionForm action=create attr:class="form" attr:id="token-form">
                <FormAlert message=action_error(create) />
                {move || create.value().get().and_then(Result::ok).map(|t| view! {
                    <div class="alert alert-ok" role="status" id="new-token">
                        <p>"Token “"{t.token.name}"” made. Copy it now: it is not shown again."</p>
                        <input class="secret" readonly value=t.secret aria-label="The new token" />
                    </div>
                })}
                <div class="field">
                    <label for="token-name">"Name"</label>
                    <input id="token-name" name="name" maxlength="64" required placeholder="laptop CLI" />
                </div>
                <div class="field">
                    <label for="token-access">"Access"</label>
                    <select id="token-access" name="access">
                        <option value="workspaces" selected>"Workspaces: see, create, start, stop, delete, open"</option>
                        <option value="read">"Read only: see workspaces and templates"</option>
                    </select>
                </div>
                <div class="field">
                    <label for="token-days">"Expires after"</label>
                    <select id="token-days" name="days">
                        <option value="7">"7 days"</option>
                        <option value="30" selected>"30 days"</option>
                        <option value="90">"90 days"</option>
                        <option value="365">"a year"</option>
                    </select>
                </div>
                <button type="submit" class="button primary">"Create token"</button>
            </ActionForm>
        </section>
        <section class="card settings-section">
            <h2>"Your tokens"</h2>
            <FormAlert message=action_error(revoke) />
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Ok(list) if list.is_empty() => view! { <p class="muted" id="no-tokens">"No tokens yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <ul class="token-list" id="tokens">
                                {list.into_iter().map(|t| view! { <TokenItem t revoke /> }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <p class="alert alert-error" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn TokenItem(t: TokenRow, revoke: ServerAction<RevokeToken>) -> impl IntoView {
    let used = match t.used_days_ago {
        None => "never used".to_string(),
        Some(0) => "used today".to_string(),
        Some(d) => format!("used {d} days ago"),
    };
    let expires = match t.expires_in_days {
        0 => "expires within a day".to_string(),
        d => format!("expires in {d} days"),
    };
    let name = t.name.clone();
    view! {
        <li class="token" data-name=name>
            <div>
                <strong>{t.name}</strong>" "<code>{t.prefix}"…"</code>
                <p class="muted">{t.access}" · "{expires}" · "{used}</p>
            </div>
            <ActionForm action=revoke>
                <input type="hidden" name="id" value=t.id />
                <button type="submit" class="button danger">"Revoke"</button>
            </ActionForm>
        </li>
    }
}
