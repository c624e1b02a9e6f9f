//! The signed-in user as the UI sees it, and the guards built on it.

use crate::api::{
    auth::{current_user, UserView},
    ApiError,
};
use leptos::{prelude::*, server_fn::ServerFn};
use leptos_router::{
    components::Redirect,
    hooks::{use_location, use_navigate},
};

/// Shared through context: the current user, refetched whenever `epoch` moves (after
/// sign-in, registration, sign-out). The nav has its own copy that also follows profile
/// edits, so editing a profile never re-renders (and resets) the page being edited.
#[derive(Clone, Copy)]
pub struct Auth {
    pub user: Resource<Result<Option<UserView>, ApiError>>,
    pub nav_user: Resource<Result<Option<UserView>, ApiError>>,
    epoch: RwSignal<u32>,
    profile_rev: RwSignal<u32>,
}

impl Auth {
    pub fn provide() {
        let epoch = RwSignal::new(0u32);
        let profile_rev = RwSignal::new(0u32);
        let user = Resource::new(move || epoch.get(), |_| current_user());
        let nav_user = Resource::new(move || (epoch.get(), profile_rev.get()), |_| current_user());
        provide_context(Auth {
            user,
            nav_user,
            epoch,
            profile_rev,
        });
    }

    pub fn get() -> Auth {
        expect_context::<Auth>()
    }

    /// Reloads what the nav shows (after a profile change).
    pub fn refresh_nav(&self) {
        self.profile_rev.update(|e| *e += 1);
    }
}

/// `path` with `next` appended as a query parameter (when there is one).
pub fn with_next(path: &str, next: &str) -> String {
    if next.is_empty() {
        path.to_string()
    } else {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}next={}", urlencoding::encode(next))
    }
}

/// After an auth action succeeds (its value is the page to go to), reloads the user and
/// navigates there without a page reload.
pub fn navigate_on_success<S>(action: ServerAction<S>)
where
    S: ServerFn<Output = String, Error = ApiError> + Clone + Send + Sync + 'static,
{
    let auth = Auth::get();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(to)) = action.value().get() {
            action.value().set(None);
            auth.epoch.update(|e| *e += 1);
            if is_server_route(&to) {
                // Not a page of this app (e.g. opening a workspace): a real navigation.
                let _ = window().location().set_href(&to);
            } else {
                navigate(&to, Default::default());
            }
        }
    });
}

/// Paths the server answers itself rather than the app's router.
fn is_server_route(to: &str) -> bool {
    to.starts_with("/open/") || to.starts_with("/auth/")
}

/// The error of an action's last run, as the message to show.
pub fn action_error<S>(action: ServerAction<S>) -> Signal<Option<String>>
where
    S: ServerFn<Error = ApiError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    Signal::derive(move || {
        action.value().with(|v| match v {
            Some(Err(e)) => Some(e.to_string()),
            _ => None,
        })
    })
}

/// Renders `children` for a signed-in user; anyone else is sent to the login page with a
/// `next` back here.
#[component]
pub fn RequireUser(children: ChildrenFn) -> impl IntoView {
    let auth = Auth::get();
    let location = use_location();
    let (pathname, search) = (location.pathname, location.search);
    let children = StoredValue::new(children);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match auth.user.await {
                    Ok(Some(_)) => children.with_value(|c| c()).into_any(),
                    _ => to_login(pathname, search).into_any(),
                }
            })}
        </Suspense>
    }
}

/// Sends the visitor to the login page with a `next` back to where they are.
pub fn to_login(pathname: Memo<String>, search: Memo<String>) -> impl IntoView {
    let (pathname, search) = (pathname.get_untracked(), search.get_untracked());
    let here = if search.is_empty() {
        pathname
    } else {
        format!("{pathname}?{}", search.trim_start_matches('?'))
    };
    let to = format!("/login?next={}", urlencoding::encode(&here));
    view! { <Redirect path=to /> }
}

/// For pages only the signed-out need (login, register): a signed-in visitor goes home.
#[component]
pub fn RedirectIfSignedIn() -> impl IntoView {
    let auth = Auth::get();
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                matches!(auth.user.await, Ok(Some(_)))
                    .then(|| view! { <Redirect path="/workspaces" /> })
            })}
        </Suspense>
    }
}
