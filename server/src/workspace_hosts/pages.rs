//! The few pages the gateway answers itself, on the workspace's host: stopped (with a Start
//! button), starting, failed, refused, unreachable. Plain HTML: the dashboard's app does not
//! run on workspace hosts.

use axum::{
    http::{HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
};
use qingting_gateway::access::html_escape;

fn page(status: StatusCode, title: &str, body: &str, refresh: bool) -> Response {
    let refresh = if refresh {
        r#"<meta http-equiv="refresh" content="2">"#
    } else {
        ""
    };
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">{refresh}
<title>{title} · QingTing Studio</title>
<style>
body{{font-family:system-ui,sans-serif;background:#f4f6f8;color:#1d2733;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}}
main{{background:#fff;border-radius:12px;box-shadow:0 2px 12px #0002;padding:2rem;max-width:34rem;width:calc(100% - 3rem)}}
h1{{font-size:1.3rem;margin-top:0}} pre{{white-space:pre-wrap;background:#f0f2f5;padding:.75rem;border-radius:6px;font-size:.8rem;max-height:14rem;overflow:auto}}
button,a.button{{background:#0f7b6c;color:#fff;border:0;border-radius:8px;padding:.6rem 1.2rem;font-size:1rem;cursor:pointer;text-decoration:none;display:inline-block}}
</style></head><body><main>{body}</main></body></html>"#,
        title = html_escape(title),
    );
    with_page_headers((status, Html(html)).into_response())
}

/// The headers of every page the gateway renders itself (never framed, never cached).
pub fn with_page_headers(mut res: Response) -> Response {
    for (name, value) in qingting_gateway::access::PAGE_HEADERS {
        res.headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    res
}

/// A stopped or failed workspace; the Start button only for its owner (`can_start`).
pub fn stopped(
    name: &str,
    failed_reason: Option<&str>,
    dashboard: &str,
    can_start: bool,
) -> Response {
    let (title, text) = match failed_reason {
        Some(_) => ("failed", "This workspace failed."),
        None => ("stopped", "This workspace is stopped. Your files are kept."),
    };
    let reason = failed_reason
        .map(|r| format!("<pre>{}</pre>", html_escape(r)))
        .unwrap_or_default();
    let start = if can_start {
        r#"<form method="post" action="/_qingting/start"><button type="submit" id="start-workspace">Start</button></form>"#
    } else {
        "<p>Only its owner can start it.</p>"
    };
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("{name} is {title}"),
        &format!(
            r#"<h1>Workspace <code>{n}</code> is {title}</h1><p>{text}</p>{reason}
{start}
<p><a href="{d}/workspaces">Back to your workspaces</a></p>"#,
            n = html_escape(name),
            d = html_escape(dashboard),
        ),
        false,
    )
}

pub fn busy(name: &str, state: &str) -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("{name} is {state}"),
        &format!(
            "<h1>Workspace <code>{}</code> is {}…</h1><p>This page reloads by itself.</p>",
            html_escape(name),
            html_escape(state)
        ),
        true,
    )
}

pub fn unreachable(name: &str) -> Response {
    page(
        StatusCode::BAD_GATEWAY,
        "not answering",
        &format!(
            "<h1>Workspace <code>{}</code> is not answering</h1><p>Its IDE may be restarting. \
             This page reloads by itself.</p>",
            html_escape(name)
        ),
        true,
    )
}

/// A port preview whose port nothing in the workspace listens on (yet).
pub fn nothing_on_port(name: &str, port: u16) -> Response {
    page(
        StatusCode::BAD_GATEWAY,
        "nothing on this port",
        &format!(
            "<h1>Nothing answers on port {port} in <code>{}</code></h1><p>Start a server there \
             (for example <code>python -m http.server {port}</code>) in the workspace's \
             terminal. This page reloads by itself.</p>",
            html_escape(name)
        ),
        true,
    )
}

pub fn refused(status: u16, message: &str, dashboard: &str) -> Response {
    page(
        StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
        "access refused",
        &format!(
            r#"<h1>Access refused</h1><p>{}</p><p><a class="button" href="{}/workspaces">Your workspaces</a></p>"#,
            html_escape(message),
            html_escape(dashboard)
        ),
        false,
    )
}
