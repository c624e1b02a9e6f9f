use crate::{
    api::auth::{sign_in_options, Login},
    auth::{action_error, navigate_on_success, with_next, RedirectIfSignedIn},
    components::form::{FormAlert, PasswordField, UsernameField},
    components::outcome::OutcomeBanner,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_query_map};

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let login = ServerAction::<Login>::new();
    navigate_on_success(login);
    let register_href = move || with_next("/register", &next());
    let options = Resource::new(|| (), |_| sign_in_options());
    let github_href = move || with_next("/auth/github/start?mode=login", &next());
    view! {
        <Title text="Sign in · QingTing Studio" />
        <RedirectIfSignedIn />
        <section class="card auth-card">
            <h1>"Sign in"</h1>
            <OutcomeBanner keys=&["github", "account"] />
            <Suspense>
                {move || Suspend::new(async move {
                    matches!(options.await, Ok(o) if o.github).then(|| view! {
                        <a class="button wide github" href=github_href rel="external">"Sign in with GitHub"</a>
                        <p class="divider"><span>"or with a password"</span></p>
                    })
                })}
            </Suspense>
            <ActionForm action=login attr:class="form" attr:id="login-form">
                <input type="hidden" name="next" value=next />
                <FormAlert message=action_error(login) />
                <UsernameField />
                <PasswordField
                    id="password"
                    name="password"
                    label="Password"
                    autocomplete="current-password"
                />
                <button type="submit" class="button primary wide" disabled=move || login.pending().get()>
                    {move || if login.pending().get() { "Signing in…" } else { "Sign in" }}
                </button>
            </ActionForm>
            <p class="muted">"New here? " <A href=register_href>"Create an account"</A></p>
        </section>
    }
}
