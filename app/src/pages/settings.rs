//! `/settings/profile`, `/settings/security`, and `/settings/delete-account` (the last step
//! of deleting an account through GitHub).

use crate::{
    api::{
        settings::{
            my_profile, ChangePassword, DeleteAccount, ProfileView, RemoveAvatar, SaveProfile,
            UnlinkGithub,
        },
        workspaces::list_workspaces,
    },
    auth::{action_error, navigate_on_success, Auth, RequireUser},
    components::{
        form::{FormAlert, PasswordField, UsernameField},
        outcome::OutcomeBanner,
    },
};
use leptos::{prelude::*, server_fn::ServerFn};
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
pub(super) fn SettingsTabs() -> impl IntoView {
    view! {
        <nav class="tabs" aria-label="Settings">
            <A href="/settings/profile">"Profile"</A>
            <A href="/settings/security">"Security"</A>
            <A href="/settings/tokens">"API tokens"</A>
        </nav>
    }
}

/// Success note for an action that returns `()`.
fn saved<S>(action: ServerAction<S>, text: &'static str) -> impl IntoView
where
    S: ServerFn<Output = ()> + Clone + Send + Sync + 'static,
    S::Error: Clone + Send + Sync + 'static,
{
    move || {
        matches!(action.value().get(), Some(Ok(())))
            .then(|| view! { <p class="alert alert-ok" role="status">{text}</p> })
    }
}

/// Loads the profile, refreshed after any of the page's actions.
fn profile_resource(
    versions: impl Fn() -> usize + Send + Sync + 'static,
) -> Resource<Result<ProfileView, crate::api::ApiError>> {
    Resource::new(versions, |_| my_profile())
}

#[component]
pub fn ProfileSettingsPage() -> impl IntoView {
    view! {
        <Title text="Profile · QingTing Studio" />
        <RequireUser>
            <ProfileSettings />
        </RequireUser>
    }
}

#[component]
fn ProfileSettings() -> impl IntoView {
    let auth = Auth::get();
    let save = ServerAction::<SaveProfile>::new();
    let remove = ServerAction::<RemoveAvatar>::new();
    let unlink = ServerAction::<UnlinkGithub>::new();
    let profile = profile_resource(move || {
        save.version().get() + remove.version().get() + unlink.version().get()
    });
    // The nav shows the name and avatar: reload it after changes.
    Effect::new(move |_| {
        if matches!(save.value().get(), Some(Ok(())))
            || matches!(remove.value().get(), Some(Ok(())))
        {
            auth.refresh_nav();
        }
    });
    view! {
        <div class="page-head"><h1>"Settings"</h1></div>
        <SettingsTabs />
        <OutcomeBanner keys=&["github", "avatar", "avatar_error"] />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let p = match profile.await {
                    Ok(p) => p,
                    Err(e) => return view! { <p class="alert alert-error" role="alert">{e.to_string()}</p> }.into_any(),
                };
                let initial = p.username.chars().next().unwrap_or('?').to_ascii_uppercase().to_string();
                view! {
                    <section class="card settings-section">
                        <h2>"Avatar"</h2>
                        <div class="avatar-row">
                            {match p.avatar_url.clone() {
                                Some(url) => view! { <img class="avatar-large" src=url alt="Your avatar" data-testid="avatar-image" width="96" height="96" /> }.into_any(),
                                None => view! { <span class="avatar avatar-large" aria-hidden="true">{initial}</span> }.into_any(),
                            }}
                            // A plain multipart form: uploads stream to /api/avatar with or without WASM.
                            <form class="avatar-form" method="post" action="/api/avatar" enctype="multipart/form-data">
                                <label for="avatar">"Choose an image"</label>
                                <input id="avatar" name="avatar" type="file" accept="image/png,image/jpeg,image/webp,image/gif" required />
                                <p class="hint">{format!("PNG, JPEG, WebP or GIF, up to {} KiB. It is cropped to a square.", p.avatar_max_kib)}</p>
                                <button type="submit" class="button primary">"Upload"</button>
                            </form>
                        </div>
                        {p.avatar_url.is_some().then(|| view! {
                            <ActionForm action=remove attr:class="inline">
                                <button type="submit" class="button ghost">"Remove avatar"</button>
                            </ActionForm>
                        })}
                    </section>

                    <section class="card settings-section">
                        <h2>"Profile"</h2>
                        <ActionForm action=save attr:class="form" attr:id="profile-form">
                            <FormAlert message=action_error(save) />
                            {saved(save, "Profile saved.")}
                            <UsernameField
                                value=p.username.clone()
                                hint="Part of your workspace addresses. 3 to 31 characters: a lowercase letter, then lowercase letters or digits."
                            />
                            <div class="field">
                                <label for="display_name">"Display name"</label>
                                <input id="display_name" name="display_name" value=p.display_name.clone() maxlength="64" />
                            </div>
                            <div class="field">
                                <label for="email">"E-mail"</label>
                                <input id="email" name="email" type="text" inputmode="email" value=p.email.clone() autocomplete="email" />
                            </div>
                            <div class="field">
                                <label for="bio">"Bio"</label>
                                <textarea id="bio" name="bio" rows="4" maxlength="500">{p.bio.clone()}</textarea>
                            </div>
                            <button type="submit" class="button primary">"Save profile"</button>
                        </ActionForm>
                    </section>

                    {p.github_enabled.then(|| view! {
                        <section class="card settings-section" data-testid="github-section">
                            <h2>"GitHub"</h2>
                            <FormAlert message=action_error(unlink) />
                            {match p.github_login.clone() {
                                Some(login) => view! {
                                    <p>"Linked to GitHub user " <strong data-testid="github-login">{login}</strong>"."</p>
                                    <ActionForm action=unlink attr:class="inline">
                                        <button type="submit" class="button ghost">"Unlink GitHub"</button>
                                    </ActionForm>
                                }.into_any(),
                                None => view! {
                                    <p class="muted">"Link a GitHub account to sign in with it."</p>
                                    <GithubStartButton mode="link" label="Link GitHub" class="button" />
                                }.into_any(),
                            }}
                        </section>
                    })}
                }.into_any()
            })}
        </Suspense>
    }
}

#[component]
pub fn SecuritySettingsPage() -> impl IntoView {
    view! {
        <Title text="Security · QingTing Studio" />
        <RequireUser>
            <SecuritySettings />
        </RequireUser>
    }
}

#[component]
fn SecuritySettings() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let delete = ServerAction::<DeleteAccount>::new();
    navigate_on_success(delete);
    let profile = profile_resource(move || change.version().get());
    view! {
        <div class="page-head"><h1>"Settings"</h1></div>
        <SettingsTabs />
        <OutcomeBanner keys=&["github"] />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let p = match profile.await {
                    Ok(p) => p,
                    Err(e) => return view! { <p class="alert alert-error" role="alert">{e.to_string()}</p> }.into_any(),
                };
                view! {
                    <section class="card settings-section">
                        <h2>{if p.has_password { "Change password" } else { "Set a password" }}</h2>
                        <ActionForm action=change attr:class="form" attr:id="password-form">
                            <FormAlert message=action_error(change) />
                            {saved(change, "Password changed. Your other sessions were signed out.")}
                            {p.has_password.then(|| view! {
                                <PasswordField id="current_password" name="current_password" label="Current password" autocomplete="current-password" />
                            })}
                            <PasswordField id="new_password" name="new_password" label="New password" autocomplete="new-password" hint="At least 8 characters." />
                            <button type="submit" class="button primary">"Save password"</button>
                        </ActionForm>
                    </section>

                    <section class="card settings-section danger-zone">
                        <h2>"Delete account"</h2>
                        <p class="muted">"This deletes your account, your workspaces and their files, your sessions and your avatar. It cannot be undone."</p>
                        {if p.has_password {
                            view! {
                                <ActionForm action=delete attr:class="form" attr:id="delete-form">
                                    <FormAlert message=action_error(delete) />
                                    <PasswordField id="delete_password" name="password" label="Confirm with your password" autocomplete="current-password" />
                                    <button type="submit" class="button danger">"Delete my account"</button>
                                </ActionForm>
                            }.into_any()
                        } else {
                            view! {
                                <GithubStartButton mode="delete" label="Confirm with GitHub and delete" class="button danger" />
                            }.into_any()
                        }}
                    </section>
                }.into_any()
            })}
        </Suspense>
    }
}

/// Starts a GitHub flow that ends in a change (link, delete). A plain form POST, so it works
/// before hydration and carries the browser's `Origin`: the server starts these from a
/// same-origin POST only, never from a link another site could send a browser to.
#[component]
fn GithubStartButton(
    mode: &'static str,
    label: &'static str,
    class: &'static str,
) -> impl IntoView {
    view! {
        <form method="post" action="/auth/github/start" class="inline">
            <input type="hidden" name="mode" value=mode />
            <button type="submit" class=class>{label}</button>
        </form>
    }
}

#[component]
pub fn DeleteAccountPage() -> impl IntoView {
    view! {
        <Title text="Delete account · QingTing Studio" />
        <RequireUser>
            <DeleteAccountConfirm />
        </RequireUser>
    }
}

/// What deleting removes, and the last button. GitHub has confirmed the identity by the time
/// people arrive here; the server checks that confirmation again when the button is pressed.
#[component]
fn DeleteAccountConfirm() -> impl IntoView {
    let profile = profile_resource(|| 0);
    let workspaces = Resource::new(|| (), |_| list_workspaces());
    view! {
        <div class="page-head"><h1>"Delete account"</h1></div>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let p = match profile.await {
                    Ok(p) => p,
                    Err(e) => return view! { <p class="alert alert-error" role="alert">{e.to_string()}</p> }.into_any(),
                };
                let names: Vec<String> = workspaces
                    .await
                    .map(|w| w.workspaces.into_iter().map(|w| w.name).collect())
                    .unwrap_or_default();
                view! {
                    <section class="card settings-section danger-zone" data-testid="delete-confirm">
                        <h2>"Delete " {p.username.clone()} " for good?"</h2>
                        <p>"Deleting removes, and it cannot be undone:"</p>
                        <ul>
                            <li>"the account " <strong>{p.username.clone()}</strong>
                                {p.github_login.clone().map(|l| format!(" and its link to GitHub user {l}"))}</li>
                            <li data-testid="delete-workspaces">{workspaces_line(&names)}</li>
                            <li>"your profile" {p.avatar_url.is_some().then_some(" and avatar")}</li>
                            <li>"every session: you are signed out everywhere"</li>
                        </ul>
                        <p class="muted">"GitHub's confirmation is good for 5 minutes; after that, start again from the Security settings."</p>
                        <form method="post" action="/auth/github/delete" class="inline">
                            <button type="submit" class="button danger">"Delete my account"</button>
                        </form>
                        <a class="button ghost" href="/settings/security">"Cancel"</a>
                    </section>
                }.into_any()
            })}
        </Suspense>
    }
}

fn workspaces_line(names: &[String]) -> String {
    match names.len() {
        0 => "your workspaces (you have none)".to_string(),
        1 => format!("your workspace {} and all its files", names[0]),
        n => format!(
            "your {n} workspaces and all their files: {}",
            names.join(", ")
        ),
    }
}
