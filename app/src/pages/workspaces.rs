//! `/workspaces`: the signed-in user's workspaces, live. The first render comes with the
//! page; after hydration the list follows the server's events (`/api/workspaces/events`).
//! Every action is a plain form too, so the page works before the WASM arrives.

use crate::{
    api::workspaces::{
        human_bytes, list_workspaces, CreateWorkspace, KeepRunning, PortRow, SharePort,
        TemplateOption, WorkspaceAction, WorkspaceRow, WorkspacesPage as PageData,
    },
    auth::{action_error, Auth, RequireUser},
    components::form::FormAlert,
};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn WorkspacesPage() -> impl IntoView {
    view! {
        <Title text="Workspaces · QingTing Studio" />
        <RequireUser>
            <WorkspacesLoader />
        </RequireUser>
    }
}

#[component]
fn WorkspacesLoader() -> impl IntoView {
    let data = Resource::new(|| (), |_| list_workspaces());
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading your workspaces…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! { <Dashboard page /> }.into_any(),
                    Err(e) => view! { <p class="alert alert-error" role="alert">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Dashboard(page: PageData) -> impl IntoView {
    let rows = RwSignal::new(page.workspaces);
    follow_server_events(rows);
    let create = ServerAction::<CreateWorkspace>::new();
    let act = ServerAction::<WorkspaceAction>::new();
    // Used deep in each card's port list; through context rather than every signature.
    let share = ServerAction::<SharePort>::new();
    provide_context(share);
    let keep = ServerAction::<KeepRunning>::new();
    provide_context(keep);
    // Use figures change every few seconds: cards read them from here instead of being
    // rebuilt (which would close an open Delete confirmation).
    provide_context(rows);
    let name_input = NodeRef::<leptos::html::Input>::new();
    // A created workspace empties the name field for the next one.
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            if let Some(el) = name_input.get() {
                el.set_value("");
            }
        }
    });
    // Answers update the list at once; the events stream brings the rest.
    Effect::new(move |_| {
        if let Some(Ok(row)) = create.value().get() {
            rows.update(|list| apply_answer(list, row, true));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(row)) = act.value().get() {
            rows.update(|list| apply_answer(list, row, false));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(row)) = share.value().get() {
            rows.update(|list| upsert(list, row));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(row)) = keep.value().get() {
            rows.update(|list| upsert(list, row));
        }
    });
    let any_ready = page.templates.iter().any(|t| t.ready);
    let auth = Auth::get();
    let me = move || {
        auth.user
            .get()
            .and_then(|r| r.ok().flatten())
            .map(|u| u.username)
            .unwrap_or_default()
    };
    view! {
        <div class="page-head">
            <h1>"Workspaces"</h1>
            <p class="muted" data-testid="welcome">"Signed in as " <strong>{me}</strong></p>
        </div>
        <CreateForm create templates=page.templates any_ready name_input />
        <FormAlert message=action_error(act) />
        <FormAlert message=action_error(share) />
        <WorkspaceList rows act />
    }
}

/// The cards, or a word on how to start. Type-erased (as are the form and each card): as one
/// nested type the page is deep enough to overflow the compiler's query depth limit in the
/// size-optimised browser build.
#[component]
fn WorkspaceList(
    rows: RwSignal<Vec<WorkspaceRow>>,
    act: ServerAction<WorkspaceAction>,
) -> impl IntoView {
    view! {
        <section class="workspace-list" data-testid="workspace-list">
            <Show
                when=move || !rows.with(Vec::is_empty)
                fallback=|| view! {
                    <div class="card empty-state">
                        <h2>"No workspaces yet"</h2>
                        <p class="muted">
                            "A workspace is a VS Code or Jupyter environment of your own, one click away. "
                            "Create one above."
                        </p>
                    </div>
                }
            >
                <For each=move || rows.get() key=|r| (r.id, r.state.clone(), r.reason.clone(), r.ports.clone()) let:row>
                    <WorkspaceCard row act />
                </For>
            </Show>
        </section>
    }
    .into_any()
}

/// An answer to a create or an action, unless the events stream already brought something as
/// new: a stop's "stopping" must not overwrite the "stopped" that overtook it (through another
/// replica, say), and a delete's answer must not bring back a card the stream removed. The
/// stream always follows a change with a snapshot, so an answer left out is never missed.
fn apply_answer(list: &mut Vec<WorkspaceRow>, row: WorkspaceRow, may_add: bool) {
    match list.iter().find(|r| r.id == row.id) {
        Some(have) if have.updated_at >= row.updated_at && have.state != row.state => {}
        None if !may_add => {}
        _ => upsert(list, row),
    }
}

fn upsert(list: &mut Vec<WorkspaceRow>, row: WorkspaceRow) {
    match list.iter_mut().find(|r| r.id == row.id) {
        Some(r) => *r = row,
        None => {
            list.push(row);
            list.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }
}

#[component]
fn CreateForm(
    create: ServerAction<CreateWorkspace>,
    templates: Vec<TemplateOption>,
    any_ready: bool,
    name_input: NodeRef<leptos::html::Input>,
) -> impl IntoView {
    let options = templates
        .into_iter()
        .map(|t| {
            let label = if t.ready { t.name.clone() } else { format!("{} (not installed on this server)", t.name) };
            view! { <option value=t.id.clone() disabled=!t.ready title=t.description.clone()>{label}</option> }
        })
        .collect_view();
    view! {
        <section class="card create-card">
            <h2>"New workspace"</h2>
            {(!any_ready).then(|| view! {
                <p class="alert alert-error" role="alert" data-testid="no-editors">
                    "No editor is installed on this server yet. The operator installs them with "
                    <code>"qingting editors install"</code> "."
                </p>
            })}
            <ActionForm action=create attr:class="form create-form" attr:id="create-form">
                <FormAlert message=action_error(create) />
                <div class="field">
                    <label for="ws-name">"Name"</label>
                    <input id="ws-name" name="name" required maxlength="31" node_ref=name_input
                        pattern="[a-z][a-z0-9\\-]{0,30}" autocomplete="off" autocapitalize="none"
                        spellcheck="false" placeholder="e.g. demo" aria-describedby="ws-name-hint" />
                    <p class="hint" id="ws-name-hint">"Lowercase letters, digits and hyphens; starts with a letter."</p>
                </div>
                <div class="field">
                    <label for="ws-template">"Template"</label>
                    <select id="ws-template" name="template">{options}</select>
                </div>
                <button type="submit" class="button primary" disabled=move || create.pending().get()>
                    {move || if create.pending().get() { "Creating…" } else { "Create" }}
                </button>
            </ActionForm>
        </section>
    }
    .into_any()
}

#[component]
fn WorkspaceCard(row: WorkspaceRow, act: ServerAction<WorkspaceAction>) -> impl IntoView {
    let state = row.state.clone();
    let busy = row.controls.busy;
    let (name, template, reason) = (
        row.name.clone(),
        row.template_name.clone(),
        row.reason.clone(),
    );
    let (data_name, data_state) = (name.clone(), state.clone());
    view! {
        <article class="card workspace" data-testid="workspace" data-name=data_name data-state=data_state>
            <div class="workspace-head">
                <h3>{name}</h3>
                <span class=format!("badge state-{state}") data-testid="state">
                    {busy.then(|| view! { <span class="spinner" aria-hidden="true"></span> })}
                    {state.clone()}
                </span>
            </div>
            <p class="muted">{template}</p>
            {row.queue_position.map(|n| view! {
                <p class="queued" data-testid="queue">
                    {format!("Waiting for room on this server: number {n} in line. It starts by itself when its turn comes.")}
                </p>
            })}
            {reason.map(|r| view! { <pre class="reason" data-testid="reason">{r}</pre> })}
            {live_figures(row.id)}
            {port_links(&row)}
            <CardActions row act />
        </article>
    }
    .into_any()
}

/// The parts of a card that follow the list without rebuilding it.
fn live_figures(id: i64) -> impl IntoView {
    let rows = expect_context::<RwSignal<Vec<WorkspaceRow>>>();
    move || {
        rows.with(|list| {
            list.iter()
                .find(|r| r.id == id)
                .map(|r| (usage_line(r), idle_notice(r)))
        })
    }
}

/// Memory, CPU and disk of a running workspace.
fn usage_line(row: &WorkspaceRow) -> Option<AnyView> {
    let u = row.usage.clone()?;
    let memory = match u.memory_bytes {
        Some(m) => format!(
            "{} of {}",
            human_bytes(m),
            human_bytes(u.memory_limit_bytes)
        ),
        None => format!("? of {}", human_bytes(u.memory_limit_bytes)),
    };
    let cpu = u.cpu_percent.map_or("…".to_string(), |p| format!("{p}%"));
    let disk = u.disk_bytes.map_or("…".to_string(), human_bytes);
    Some(
        view! {
            <p class="usage muted" data-testid="usage">
                <span title="Memory">"Memory " {memory}</span>
                <span title="CPU, share of one core">"CPU " {cpu}</span>
                <span title="Files and IDE data">"Disk " {disk}</span>
            </p>
        }
        .into_any(),
    )
}

/// When idle stop will take a workspace nobody is using, and the button that says otherwise.
fn idle_notice(row: &WorkspaceRow) -> Option<AnyView> {
    let minutes = row.idle_stop_in_minutes?;
    let keep = expect_context::<ServerAction<KeepRunning>>();
    let id = row.id;
    let text = if minutes <= 1 {
        "Idle: stops within a minute".to_string()
    } else {
        format!("Idle: stops in {minutes} minutes")
    };
    Some(
        view! {
            <div class="idle" data-testid="idle">
                <span>{text}</span>
                <ActionForm action=keep attr:class="inline-form">
                    <input type="hidden" name="id" value=id />
                    <button type="submit" class="button small" data-action="keep">"Keep running"</button>
                </ActionForm>
            </div>
        }
        .into_any(),
    )
}

/// The ports a workspace listens on or shares: each a link to its preview host, whom it is
/// shared with, and the controls to share it or stop sharing it.
fn port_links(row: &WorkspaceRow) -> Option<AnyView> {
    if row.ports.is_empty() {
        return None;
    }
    let items: Vec<AnyView> = row.ports.iter().map(|p| port_item(row, p)).collect();
    Some(
        view! {
            <div class="ports" data-testid="ports">
                <p class="muted">"Ports"</p>
                <ul>{items}</ul>
            </div>
        }
        .into_any(),
    )
}

fn port_item(row: &WorkspaceRow, p: &PortRow) -> AnyView {
    let share = expect_context::<ServerAction<SharePort>>();
    let href = format!("{}?port={}", row.open_path, p.port);
    let (id, port) = (row.id, p.port);
    let badge = match p.sharing.as_str() {
        "public" => Some("public"),
        "users" => Some("signed-in users"),
        _ => None,
    };
    let controls: Vec<AnyView> = if badge.is_some() {
        vec![share_button(share, id, port, "private", "Stop sharing")]
    } else {
        vec![
            share_button(share, id, port, "users", "Share with signed-in users"),
            share_button(share, id, port, "public", "Share publicly"),
        ]
    };
    let url = p.url.clone();
    view! {
        <li class="port" data-port=port data-sharing=p.sharing.clone() data-listening=p.listening.to_string()>
            <a class="button" href=href target="_blank" rel="external noopener" data-action="open-port">{format!(":{port}")}</a>
            {(!p.listening).then(|| view! { <span class="muted">" not listening"</span> })}
            {badge.map(|b| view! {
                <span class="badge shared" data-testid="shared">"shared: " {b}</span>
                <code class="port-url">{url}</code>
            })}
            {controls}
        </li>
    }
    .into_any()
}

fn share_button(
    share: ServerAction<SharePort>,
    id: i64,
    port: u16,
    sharing: &'static str,
    label: &'static str,
) -> AnyView {
    view! {
        <ActionForm action=share attr:class="inline-form">
            <input type="hidden" name="id" value=id />
            <input type="hidden" name="port" value=port />
            <input type="hidden" name="sharing" value=sharing />
            <button type="submit" class="button small" data-share=sharing>{label}</button>
        </ActionForm>
    }
    .into_any()
}

/// The controls a workspace in its state offers, each a type-erased view (see `WorkspaceList`).
#[component]
fn CardActions(row: WorkspaceRow, act: ServerAction<WorkspaceAction>) -> impl IntoView {
    let allowed = row.controls;
    let mut controls: Vec<AnyView> = Vec::new();
    if allowed.can_open {
        controls.push(
            view! {
                <a class="button primary" href=row.open_path.clone() target="_blank" rel="external noopener" data-action="open">"Open"</a>
            }
            .into_any(),
        );
    }
    if allowed.can_start {
        controls.push(action_button(
            act,
            row.id,
            "start",
            "Start",
            "button primary",
        ));
    }
    if allowed.can_stop {
        controls.push(action_button(act, row.id, "stop", "Stop", "button"));
        controls.push(action_button(act, row.id, "restart", "Restart", "button"));
    }
    if allowed.can_cancel {
        controls.push(action_button(act, row.id, "stop", "Cancel", "button"));
    }
    if !allowed.busy {
        let confirm = action_button(act, row.id, "delete", "Yes, delete it", "button danger");
        controls.push(
            view! {
                <details class="confirm">
                    <summary class="button danger" data-action="delete">"Delete"</summary>
                    <p>"Delete " <strong>{row.name.clone()}</strong> " and all its files?"</p>
                    {confirm}
                </details>
            }
            .into_any(),
        );
    }
    view! { <div class="actions">{controls}</div> }
}

/// One lifecycle action as a form: a plain POST before hydration, a server action after.
fn action_button(
    act: ServerAction<WorkspaceAction>,
    id: i64,
    action: &'static str,
    label: &'static str,
    class: &'static str,
) -> AnyView {
    view! {
        <ActionForm action=act attr:class="inline-form">
            <input type="hidden" name="id" value=id />
            <input type="hidden" name="action" value=action />
            <button type="submit" class=class data-action=action>{label}</button>
        </ActionForm>
    }
    .into_any()
}

/// After hydration: replaces the list with each snapshot the server pushes. The stream ends
/// with the session (signed out elsewhere, suspended, deleted), its last event saying so: the
/// page then goes to the sign-in page instead of showing a list that no longer moves.
fn follow_server_events(rows: RwSignal<Vec<WorkspaceRow>>) {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use futures::StreamExt;
        use gloo_net::eventsource::futures::EventSource;
        leptos::task::spawn_local(async move {
            let Ok(mut source) = EventSource::new("/api/workspaces/events") else {
                return;
            };
            let Ok(mut events) = source.subscribe("workspaces") else {
                return;
            };
            let mut ended = false;
            while let Some(Ok((_, msg))) = events.next().await {
                let Some(text) = msg.data().as_string() else {
                    continue;
                };
                if text == crate::api::workspaces::SESSION_ENDED {
                    ended = true;
                    break;
                }
                let Ok(list) = serde_json::from_str::<Vec<WorkspaceRow>>(&text) else {
                    continue;
                };
                // The page is gone: stop listening (dropping the source closes it).
                if rows.try_set(list).is_some() {
                    break;
                }
            }
            source.close();
            if !ended {
                return;
            }
            // Signed out from this very page (Log out), it is on its way elsewhere already:
            // give that a moment, then leave if this list is still what the person sees. A
            // real navigation: everything the page knew about the user is stale.
            set_timeout(
                move || {
                    let here = window().location().pathname().ok();
                    if rows.try_get_untracked().is_some() && here.as_deref() == Some("/workspaces")
                    {
                        let _ = window().location().set_href("/login?next=%2Fworkspaces");
                    }
                },
                std::time::Duration::from_millis(200),
            );
        });
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = rows;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, state: &str, updated_at: i64) -> WorkspaceRow {
        WorkspaceRow {
            id,
            name: format!("ws{id}"),
            template_id: "t".into(),
            template_name: "T".into(),
            state: state.into(),
            reason: None,
            updated_at,
            open_path: String::new(),
            controls: Default::default(),
            ports: Vec::new(),
            usage: None,
            idle_stop_in_minutes: None,
            queue_position: None,
        }
    }

    #[test]
    fn an_answer_overtaken_by_the_events_stream_is_left_out() {
        // The stream already said "stopped": the stop's own answer comes late.
        let mut list = vec![row(1, "stopped", 100)];
        apply_answer(&mut list, row(1, "stopping", 100), false);
        assert_eq!(list[0].state, "stopped");
        // A newer answer is shown at once.
        apply_answer(&mut list, row(1, "starting", 101), false);
        assert_eq!(list[0].state, "starting");
        // A delete's answer does not bring back a card the stream removed; a create's adds.
        let mut list = Vec::new();
        apply_answer(&mut list, row(2, "deleting", 100), false);
        assert!(list.is_empty());
        apply_answer(&mut list, row(3, "creating", 100), true);
        assert_eq!(list.len(), 1);
        // Nor does a create's answer undo the "running" the stream brought in the same second.
        list[0] = row(3, "running", 100);
        apply_answer(&mut list, row(3, "creating", 100), true);
        assert_eq!(list[0].state, "running");
    }
}
