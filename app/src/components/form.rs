//! Form building blocks shared by the account pages.

use leptos::prelude::*;

/// An inline alert for a form's error, announced to screen readers.
#[component]
pub fn FormAlert(#[prop(into)] message: Signal<Option<String>>) -> impl IntoView {
    move || {
        message.get().map(|m| {
            view! {
                <p class="alert alert-error" role="alert">
                    {m}
                </p>
            }
        })
    }
}

/// A password input with a Show/Hide toggle (the toggle works once the page has hydrated;
/// before that the field is a plain password input).
#[component]
pub fn PasswordField(
    id: &'static str,
    name: &'static str,
    label: &'static str,
    autocomplete: &'static str,
    #[prop(optional)] hint: Option<&'static str>,
) -> impl IntoView {
    let shown = RwSignal::new(false);
    let hint_id = format!("{id}-hint");
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <div class="password-row">
                <input
                    id=id
                    name=name
                    type=move || if shown.get() { "text" } else { "password" }
                    autocomplete=autocomplete
                    aria-describedby=hint.map(|_| hint_id.clone())
                    required
                />
                <button
                    type="button"
                    class="button ghost"
                    aria-controls=id
                    aria-pressed=move || shown.get().to_string()
                    on:click=move |_| shown.update(|s| *s = !*s)
                >
                    {move || if shown.get() { "Hide" } else { "Show" }}
                </button>
            </div>
            {hint.map(|h| view! { <p class="hint" id=format!("{id}-hint")>{h}</p> })}
        </div>
    }
}

/// The user-name input, with the grammar shown as a hint where one is given.
#[component]
pub fn UsernameField(
    #[prop(optional)] hint: Option<&'static str>,
    #[prop(optional, into)] value: Option<String>,
) -> impl IntoView {
    view! {
        <div class="field">
            <label for="username">"User name"</label>
            <input
                id="username"
                name="username"
                autocomplete="username"
                autocapitalize="none"
                spellcheck="false"
                aria-describedby=hint.map(|_| "username-hint")
                value=value
                required
            />
            {hint.map(|h| view! { <p class="hint" id="username-hint">{h}</p> })}
        </div>
    }
}
