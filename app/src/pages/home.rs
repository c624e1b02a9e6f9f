use crate::auth::Auth;
use leptos::prelude::*;
use leptos_router::components::Redirect;

/// `/`: the workspace list for a signed-in user, the login page for everyone else.
#[component]
pub fn HomePage() -> impl IntoView {
    let auth = Auth::get();
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                let to = match auth.user.await {
                    Ok(Some(_)) => "/workspaces",
                    _ => "/login",
                };
                view! { <Redirect path=to /> }
            })}
        </Suspense>
    }
}
