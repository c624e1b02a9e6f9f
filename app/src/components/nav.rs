//! The top bar: brand, and the signed-in user with sign-out (or sign-in links).

use crate::{
    api::auth::{Logout, UserView},
    auth::{navigate_on_success, Auth},
};
use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn TopNav() -> impl IntoView {
    let auth = Auth::get();
    view! {
        <header class="topbar">
            <A href="/" attr:class="brand">
                <img class="brand-mark" src="/favicon.svg" alt="" width="28" height="28" />
                <span class="brand-name">"QingTing Studio"</span>
            </A>
            <nav class="topnav" aria-label="Account">
                <Transition>
                    {move || Suspend::new(async move {
                        match auth.nav_user.await {
                            Ok(Some(user)) => view! { <SignedIn user /> }.into_any(),
                            _ => view! {
                                <A href="/login" attr:class="button ghost">"Sign in"</A>
                                <A href="/register" attr:class="button primary">"Register"</A>
                            }
                            .into_any(),
                        }
                    })}
                </Transition>
            </nav>
        </header>
    }
}

#[component]
fn SignedIn(user: UserView) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    navigate_on_success(logout);
    view! {
        <A href="/workspaces" attr:class="navlink">"Workspaces"</A>
        {user.is_admin.then(|| view! { <A href="/admin" attr:class="navlink">"Admin"</A> })}
        <A href="/settings/profile" attr:class="nav-user" attr:data-testid="nav-user" attr:title="Settings">
            {match user.avatar_url.clone() {
                Some(url) => view! { <img class="avatar" src=url alt="" width="28" height="28" /> }.into_any(),
                None => view! {
                    <span class="avatar" aria-hidden="true">
                        {user.username.chars().next().unwrap_or('?').to_ascii_uppercase().to_string()}
                    </span>
                }.into_any(),
            }}
            <span class="nav-username">{user.shown_name().to_string()}</span>
            <span class="visually-hidden">{format!(" ({})", user.username)}</span>
        </A>
        <ActionForm action=logout attr:class="inline">
            <button type="submit" class="button ghost">"Log out"</button>
        </ActionForm>
    }
}
