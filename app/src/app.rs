//! The HTML shell and the route table.

use crate::{
    auth::Auth,
    components::nav::TopNav,
    pages::{
        admin::{AdminAuditPage, AdminInstancePage, AdminUsersPage, AdminWorkspacesPage},
        home::HomePage,
        login::LoginPage,
        not_found::NotFound,
        register::RegisterPage,
        settings::{DeleteAccountPage, ProfileSettingsPage, SecuritySettingsPage},
        tokens::TokensSettingsPage,
        workspaces::WorkspacesPage,
    },
};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

/// The document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The bundle's name carries a content hash (the server's choice): CSS, JS and WASM are
    // cached for good and re-fetched only after a release changes them.
    let stylesheet = format!("/{}/{}.css", options.site_pkg_dir, options.output_name);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <link rel="stylesheet" id="leptos" href=stylesheet />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    Auth::provide();
    // Set once the WASM has taken over, so tests (and styles) can tell.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    // Async SSR everywhere: pages wait for the session lookup, so a protected page can answer
    // with a real 302 instead of a flash of content.
    view! {
        <Router>
            <div class="app" data-hydrated=move || if hydrated.get() { "true" } else { "false" }>
                <TopNav />
                <main class="content">
                    <Routes fallback=NotFound>
                        <Route path=path!("/") view=HomePage ssr=SsrMode::Async />
                        <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async />
                        <Route path=path!("/register") view=RegisterPage ssr=SsrMode::Async />
                        <Route path=path!("/workspaces") view=WorkspacesPage ssr=SsrMode::Async />
                        <Route path=path!("/settings/profile") view=ProfileSettingsPage ssr=SsrMode::Async />
                        <Route path=path!("/settings/security") view=SecuritySettingsPage ssr=SsrMode::Async />
                        <Route path=path!("/admin") view=AdminInstancePage ssr=SsrMode::Async />
                        <Route path=path!("/admin/users") view=AdminUsersPage ssr=SsrMode::Async />
                        <Route path=path!("/admin/workspaces") view=AdminWorkspacesPage ssr=SsrMode::Async />
                        <Route path=path!("/admin/audit") view=AdminAuditPage ssr=SsrMode::Async />
                        <Route path=path!("/settings/tokens") view=TokensSettingsPage ssr=SsrMode::Async />
                        <Route path=path!("/settings/delete-account") view=DeleteAccountPage ssr=SsrMode::Async />
                    </Routes>
                </main>
            </div>
        </Router>
    }
}
