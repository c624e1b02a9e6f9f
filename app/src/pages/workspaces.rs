use crate::auth::{Auth, RequireUser};
use leptos::prelude::*;
use leptos_meta::Title;

/// `/workspaces`: the signed-in user's home. The list itself arrives with workspaces.
#[component]
pub fn WorkspacesPage() -> impl IntoView {
    view! {
        <Title text="Workspaces · QingTing Studio" />
        <RequireUser>
            <WorkspaceList />
        </RequireUser>
    }
}

#[component]
fn WorkspaceList() -> impl IntoView {
    let auth = Auth::get();
    let name = move || {
        auth.user
            .get()
            .and_then(|r| r.ok().flatten())
            .map(|u| u.username)
            .unwrap_or_default()
    };
    view! {
        <div class="page-head">
            <h1>"Workspaces"</h1>
            <p class="muted" data-testid="welcome">"Signed in as " <strong>{name}</strong></p>
        </div>
        <section class="card empty-state" data-testid="workspace-list">
            <h2>"No workspaces yet"</h2>
            <p class="muted">
                "A workspace is a VS Code or Jupyter environment of your own, one click away. "
                "Yours will be listed here."
            </p>
        </section>
    }
}
