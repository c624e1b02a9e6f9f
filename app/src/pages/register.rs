use crate::{
    api::auth::Register,
    auth::{action_error, navigate_on_success, with_next, RedirectIfSignedIn},
    components::form::{FormAlert, PasswordField, UsernameField},
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_query_map};

/// Mirrors the server's rule (qingting_core::accounts::USERNAME_RULE), shown before typing.
const USERNAME_HINT: &str =
    "3 to 31 characters: a lowercase letter, then lowercase letters or digits (a–z, 0–9).";
const PASSWORD_HINT: &str = "At least 8 characters.";

#[component]
pub fn RegisterPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let register = ServerAction::<Register>::new();
    navigate_on_success(register);
    let login_href = move || with_next("/login", &next());
    view! {
        <Title text="Create an account · QingTing Studio" />
        <RedirectIfSignedIn />
        <section class="card auth-card">
            <h1>"Create an account"</h1>
            <ActionForm action=register attr:class="form" attr:id="register-form">
                <input type="hidden" name="next" value=next />
                <FormAlert message=action_error(register) />
                <UsernameField hint=USERNAME_HINT />
                <PasswordField
                    id="password"
                    name="password"
                    label="Password"
                    autocomplete="new-password"
                    hint=PASSWORD_HINT
                />
                <button type="submit" class="button primary wide" disabled=move || register.pending().get()>
                    {move || if register.pending().get() { "Creating…" } else { "Create account" }}
                </button>
            </ActionForm>
            <p class="muted">"Already have an account? " <A href=login_href>"Sign in"</A></p>
        </section>
    }
}
