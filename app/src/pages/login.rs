use crate::{
    api::auth::Login,
    auth::{action_error, navigate_on_success, RedirectIfSignedIn},
    components::form::{FormAlert, PasswordField},
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
    let register_href = move || match next() {
        n if n.is_empty() => "/register".to_string(),
        n => format!("/register?next={}", urlencoding::encode(&n)),
    };
    view! {
        <Title text="Sign in · QingTing Studio" />
        <RedirectIfSignedIn />
        <section class="card auth-card">
            <h1>"Sign in"</h1>
            <ActionForm action=login attr:class="form" attr:id="login-form">
                <input type="hidden" name="next" value=next />
                <FormAlert message=action_error(login) />
                <div class="field">
                    <label for="username">"User name"</label>
                    <input
                        id="username"
                        name="username"
                        autocomplete="username"
                        autocapitalize="none"
                        spellcheck="false"
                        required
                    />
                </div>
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
