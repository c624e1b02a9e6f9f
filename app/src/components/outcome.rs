//! Outcome codes: how a flow that ends in a redirect (GitHub sign-in, link and deletion, an
//! avatar uploaded as a plain form, account deletion) tells the page what happened. One enum:
//! the server writes it into the URL, the page shows its fixed message (never free text from
//! the URL).

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// Declares the enum and the list of all its codes from one list of names.
macro_rules! outcomes {
    ($($name:ident),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Outcome {
            $($name),*
        }
        const ALL: &[Outcome] = &[$(Outcome::$name),*];
    };
}

outcomes!(
    GithubLinked,
    GithubTaken,
    GithubAlreadyLinked,
    GithubStateMismatch,
    GithubDenied,
    GithubMismatch,
    GithubDisabled,
    GithubUseButton,
    GithubConfirmExpired,
    GithubSuspended,
    GithubFailed,
    AvatarUpdated,
    AvatarTooLarge,
    AvatarNotImage,
    AvatarCorrupt,
    AvatarTooManyPixels,
    AvatarRateLimited,
    AvatarFailed,
    AccountDeleted,
);

use Outcome::*;

impl Outcome {
    /// The query parameter it travels in.
    pub fn key(self) -> &'static str {
        match self {
            GithubLinked | GithubTaken | GithubAlreadyLinked | GithubStateMismatch
            | GithubDenied | GithubMismatch | GithubDisabled | GithubUseButton
            | GithubConfirmExpired | GithubSuspended | GithubFailed => "github",
            AvatarUpdated => "avatar",
            AvatarTooLarge | AvatarNotImage | AvatarCorrupt | AvatarTooManyPixels
            | AvatarRateLimited | AvatarFailed => "avatar_error",
            AccountDeleted => "account",
        }
    }

    /// Its value in the URL (also the `error` code of the avatar API's JSON answers).
    pub fn code(self) -> &'static str {
        match self {
            GithubLinked => "linked",
            GithubTaken => "taken",
            GithubAlreadyLinked => "already_linked",
            GithubStateMismatch => "state_mismatch",
            GithubDenied => "denied",
            GithubMismatch => "mismatch",
            GithubDisabled => "disabled",
            GithubUseButton => "use_button",
            GithubConfirmExpired => "confirm_expired",
            GithubSuspended => "suspended",
            GithubFailed => "failed",
            AvatarUpdated => "updated",
            AvatarTooLarge => "too_large",
            AvatarNotImage => "not_image",
            AvatarCorrupt => "corrupt",
            AvatarTooManyPixels => "too_many_pixels",
            AvatarRateLimited => "rate_limited",
            AvatarFailed => "storage",
            AccountDeleted => "deleted",
        }
    }

    /// `key=code`, to append to a page's path after `?`.
    pub fn query(self) -> String {
        format!("{}={}", self.key(), self.code())
    }

    /// The outcome a URL names; an unknown code of a known key reads as that key's failure.
    pub fn parse(key: &str, code: &str) -> Option<Self> {
        ALL.iter()
            .copied()
            .find(|o| o.key() == key && o.code() == code)
            .or(match key {
                "github" => Some(GithubFailed),
                "avatar_error" => Some(AvatarFailed),
                _ => None,
            })
    }

    pub fn is_ok(self) -> bool {
        matches!(self, GithubLinked | AvatarUpdated | AccountDeleted)
    }

    pub fn message(self) -> &'static str {
        match self {
            GithubLinked => "GitHub is now linked to your account.",
            GithubTaken => "That GitHub account is already linked to another QingTing account.",
            GithubAlreadyLinked => "A GitHub account is already linked. Unlink it first.",
            GithubStateMismatch => "The GitHub sign-in could not be verified (it expired or did not start here). Please try again.",
            GithubDenied => "GitHub access was not granted.",
            GithubMismatch => "That is not the GitHub account linked to this account.",
            GithubDisabled => "GitHub sign-in is not configured on this server.",
            GithubUseButton => "To link GitHub or to delete your account through GitHub, use the button on this page.",
            GithubConfirmExpired => "GitHub's confirmation is missing or has expired (it lasts 5 minutes). Confirm with GitHub again.",
            GithubSuspended => "This account is suspended. Ask an administrator of this instance.",
            GithubFailed => "GitHub sign-in failed. Please try again.",
            AvatarUpdated => "Your avatar was updated.",
            AvatarTooLarge => "That image is too large (the limit is shown below the picker).",
            AvatarNotImage => "Choose a PNG, JPEG, WebP or GIF image.",
            AvatarCorrupt => "The image could not be read: it is damaged or not what it claims to be.",
            AvatarTooManyPixels => "The image has too many pixels for an avatar (at most 4096 on a side and about 10 megapixels). Make it smaller and try again.",
            AvatarRateLimited => "Too many avatar uploads in a short time. Wait a few minutes and try again.",
            AvatarFailed => "The avatar could not be saved. Please try again.",
            AccountDeleted => "Your account was deleted.",
        }
    }
}

/// Shows the message of the first known outcome among `keys` in the query string.
#[component]
pub fn OutcomeBanner(keys: &'static [&'static str]) -> impl IntoView {
    let query = use_query_map();
    move || {
        let q = query.read();
        keys.iter()
            .find_map(|k| q.get(k).and_then(|v| Outcome::parse(k, &v)))
            .map(|o| {
                let (class, role) = if o.is_ok() {
                    ("alert alert-ok", "status")
                } else {
                    ("alert alert-error", "alert")
                };
                view! { <p class=class role=role data-testid="outcome">{o.message()}</p> }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_reads_back_from_its_url() {
        for &o in ALL {
            assert_eq!(Outcome::parse(o.key(), o.code()), Some(o), "{o:?}");
            assert!(!o.message().is_empty());
        }
        assert_eq!(Outcome::parse("github", "whatever"), Some(GithubFailed));
        assert_eq!(Outcome::parse("nope", "linked"), None);
        assert_eq!(GithubTaken.query(), "github=taken");
    }
}
