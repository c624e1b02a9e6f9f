//! The one page the gateway renders itself: the question asked before a handed-over link signs
//! someone in to a workspace.

use super::{Target, AUTH_PATH};

/// The page that asks before a handed-over link signs someone in to a workspace. Its button
/// posts the same token back from this origin; it may not be framed (clickjacking).
pub fn confirm_page(target: &Target, token: &str, next: &str) -> String {
    let e = html_escape;
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Open this workspace? · QingTing Studio</title>
<style>body{{font-family:system-ui,sans-serif;background:#f4f6f8;color:#1d2733;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}}
main{{background:#fff;border-radius:12px;box-shadow:0 2px 12px #0002;padding:2rem;max-width:34rem;width:calc(100% - 3rem)}}
button{{background:#0f7b6c;color:#fff;border:0;border-radius:8px;padding:.6rem 1.2rem;font-size:1rem;cursor:pointer}}</style>
</head><body><main><h1>Open workspace <code>{user}/{ws}</code>?</h1>
<p>This link signs you in to the workspace <strong>{ws}</strong> of <strong>{user}</strong>. It did not come from your own QingTing dashboard. If someone sent it to you, do not continue unless you are <strong>{user}</strong>.</p>
<form method="post" action="{path}"><input type="hidden" name="token" value="{token}"><input type="hidden" name="next" value="{next}">
<button type="submit" id="continue-to-workspace">Continue to {user}/{ws}</button></form></main></body></html>"#,
        user = e(&target.user),
        ws = e(&target.workspace),
        path = AUTH_PATH,
        token = e(token),
        next = e(next),
    )
}

/// Headers every page the gateway renders itself carries: never framed, never cached.
pub const PAGE_HEADERS: [(&str, &str); 3] = [
    ("content-security-policy", "frame-ancestors 'none'"),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-store"),
];

/// Text made safe inside HTML elements and double-quoted attributes.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
