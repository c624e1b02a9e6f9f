//! The admin pages: `/admin` (the instance), `/admin/users`, `/admin/workspaces` and
//! `/admin/audit`. Admins only: anyone else gets the not-found page, as the server's admin
//! endpoints answer them. The lists refresh every few seconds while open.

use crate::{
    api::admin::{
        admin_audit, admin_instance, admin_users, admin_workspaces, AdminSetQuota, AdminUserAction,
        AdminWorkspaceAction, AdminWorkspaceRow, AuditPage, MemberRow,
    },
    api::workspaces::human_bytes,
    auth::{action_error, to_login, Auth},
    components::form::FormAlert,
    pages::not_found::NotFound,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_location};

#[component]
fn RequireAdmin(children: ChildrenFn) -> impl IntoView {
    let auth = Auth::get();
    let location = use_location();
    let (pathname, search) = (location.pathname, location.search);
    let children = StoredValue::new(children);
    // One boundary, not `RequireUser` around another: nested, the page rendered once per
    // boundary on the server, and the browser could not hydrate what it sent.
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match auth.user.await {
                    Ok(Some(u)) if u.is_admin => children.with_value(|c| c()).into_any(),
                    Ok(Some(_)) => view! { <NotFound /> }.into_any(),
                    _ => to_login(pathname, search).into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn AdminTabs() -> impl IntoView {
    view! {
        <div class="page-head"><h1>"Admin"</h1></div>
        <nav class="tabs" aria-label="Admin">
            <A href="/admin" exact=true>"Instance"</A>
            <A href="/admin/users">"Users"</A>
            <A href="/admin/workspaces">"Workspaces"</A>
            <A href="/admin/audit">"Audit log"</A>
        </nav>
    }
}

/// A counter that moves every two seconds after hydration, for lists to reload on.
fn ticker() -> ReadSignal<u64> {
    let (tick, set_tick) = signal(0u64);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || {
                set_tick.try_update(|t| *t += 1);
            },
            std::time::Duration::from_secs(2),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = set_tick;
    tick
}

/// "5 min ago" for a number of seconds.
fn ago(secs: i64) -> String {
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

#[component]
pub fn AdminInstancePage() -> impl IntoView {
    view! {
        <Title text="Admin · QingTing Studio" />
        <RequireAdmin><Instance /></RequireAdmin>
    }
}

#[component]
fn Instance() -> impl IntoView {
    let tick = ticker();
    let info = Resource::new(move || tick.get(), |_| admin_instance());
    view! {
        <AdminTabs />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let i = match info.await {
                    Ok(i) => i,
                    Err(e) => return view! { <p class="alert alert-error" role="alert">{e.to_string()}</p> }.into_any(),
                };
                let limit = i.max_running.map_or("no cap".to_string(), |m| m.to_string());
                view! {
                    <section class="card settings-section" id="instance">
                        <dl class="facts">
                            <dt>"Running"</dt><dd id="running">{format!("{} of {limit}", i.running)}</dd>
                            <dt>"Accounts"</dt><dd>{format!("{} ({} suspended)", i.accounts, i.suspended)}</dd>
                            <dt>"Defaults per user"</dt><dd>{format!("{} workspaces, {} running", i.default_workspaces, i.default_running)}</dd>
                            <dt>"Runtime"</dt><dd>{i.runtime}</dd>
                            <dt>"Isolation"</dt><dd class="wrap">{i.isolation}</dd>
                            <dt>"Version"</dt><dd>{i.version}</dd>
                        </dl>
                    </section>
                    <section class="card settings-section">
                        <h2>"Warm pool"</h2>
                        {if i.pool.is_empty() {
                            view! { <p class="muted">"Off (workspaces.pool)."</p> }.into_any()
                        } else {
                            view! {
                                <ul class="plain">
                                    {i.pool.into_iter().map(|(t, target, ready, starting)| view! {
                                        <li>{format!("{t}: {ready} ready, {starting} starting, target {target}")}</li>
                                    }).collect_view()}
                                </ul>
                            }.into_any()
                        }}
                    </section>
                    <section class="card settings-section">
                        <h2>"Editors"</h2>
                        <ul class="plain">
                            {i.editors.into_iter().map(|(name, ready)| view! {
                                <li>{name}" "<span class=if ready { "badge state-running" } else { "badge state-failed" }>{if ready { "installed" } else { "not installed" }}</span></li>
                            }).collect_view()}
                        </ul>
                    </section>
                }.into_any()
            })}
        </Transition>
    }
}

#[component]
pub fn AdminUsersPage() -> impl IntoView {
    view! {
        <Title text="Users · Admin · QingTing Studio" />
        <RequireAdmin><Users /></RequireAdmin>
    }
}

#[component]
fn Users() -> impl IntoView {
    let tick = ticker();
    let search = RwSignal::new(String::new());
    let sort = RwSignal::new("last_seen".to_string());
    let act = ServerAction::<AdminUserAction>::new();
    let quota = ServerAction::<AdminSetQuota>::new();
    // The list as first shown (rendered on the server too). Everything after it, the search
    // and sort included, updates the rows in place: a list rendered anew would redraw the
    // forms in it and lose what someone is typing there.
    let list = Resource::new(
        || (),
        move |_| admin_users(search.get_untracked(), sort.get_untracked()),
    );
    let rows = RwSignal::new(Vec::<MemberRow>::new());
    let live = Resource::new(
        move || {
            (
                tick.get(),
                act.version().get(),
                quota.version().get(),
                search.get(),
                sort.get(),
            )
        },
        |(_, _, _, q, s)| admin_users(q, s),
    );
    Effect::new(move |_| {
        if let Some(Ok(l)) = live.get() {
            rows.set(l);
        }
    });
    view! {
        <AdminTabs />
        <section class="card settings-section">
            <div class="filters">
                <div class="field">
                    <label for="user-search">"Search"</label>
                    <input id="user-search" type="search" placeholder="name"
                        prop:value=move || search.get()
                        on:input=move |ev| search.set(event_target_value(&ev)) />
                </div>
                <div class="field">
                    <label for="user-sort">"Sort by"</label>
                    <select id="user-sort" on:change=move |ev| sort.set(event_target_value(&ev))>
                        <option value="last_seen">"Last seen"</option>
                        <option value="name">"Name"</option>
                        <option value="created">"Newest"</option>
                    </select>
                </div>
            </div>
            <FormAlert message=action_error(act) />
            <FormAlert message=action_error(quota) />
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(first) => {
                            rows.set(first);
                            view! {
                                <ul class="admin-list" id="users">
                                    <For each=move || rows.get() key=|m| member_key(m) let:m>
                                        <UserItem m act quota rows />
                                    </For>
                                </ul>
                            }.into_any()
                        }
                        Err(e) => view! { <p class="alert alert-error" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// What re-renders a user's row when it changes: what its buttons and forms show. Not what
/// changes on its own (last seen, the workspace counts: read live from `rows`), which would
/// close a form someone has open.
fn member_key(m: &MemberRow) -> String {
    format!(
        "{}:{}:{}:{}:{:?}:{:?}:{:?}",
        m.id,
        m.username,
        m.admin,
        m.suspended,
        m.quota_workspaces,
        m.quota_running,
        m.quota_memory_mb
    )
}

#[component]
fn UserItem(
    m: MemberRow,
    act: ServerAction<AdminUserAction>,
    quota: ServerAction<AdminSetQuota>,
    rows: RwSignal<Vec<MemberRow>>,
) -> impl IntoView {
    let button = move |id: i64, action: &'static str, label: &'static str, class: &'static str| {
        view! {
            <ActionForm action=act attr:class="inline-form">
                <input type="hidden" name="id" value=id />
                <input type="hidden" name="action" value=action />
                <button type="submit" class=class data-action=action>{label}</button>
            </ActionForm>
        }
    };
    let id = m.id;
    let usage = move || {
        rows.with(|rs| {
            rs.iter().find(|r| r.id == id).map(|r| {
                let seen = r.last_seen_ago.map_or("never".to_string(), ago);
                format!(
                    "seen {seen} · {} workspaces ({} running) · ",
                    r.workspaces, r.running
                )
            })
        })
    };
    let q = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let quota_text = match (m.quota_workspaces, m.quota_running, m.quota_memory_mb) {
        (None, None, None) => "default quota".to_string(),
        (w, r, mem) => format!(
            "quota: {} workspaces, {} running, {}",
            w.map_or("default".into(), |v| v.to_string()),
            r.map_or("default".into(), |v| v.to_string()),
            mem.map_or("default memory".into(), |v| format!("{v} MiB each")),
        ),
    };
    view! {
        <li class="admin-row" data-user=m.username.clone()>
            <div class="admin-row-head">
                <strong>{m.username.clone()}</strong>
                {m.display_name.clone().map(|d| view! { <span class="muted">{d}</span> })}
                {m.admin.then(|| view! { <span class="badge">"admin"</span> })}
                {m.suspended.then(|| view! { <span class="badge state-failed">"suspended"</span> })}
            </div>
            <p class="muted">
                <span class="usage">{usage}</span>
                <span class="quota">{quota_text}</span>
            </p>
            <div class="actions">
                {(!m.is_you).then(|| if m.suspended {
                    button(id, "resume", "Resume", "button").into_any()
                } else {
                    button(id, "suspend", "Suspend", "button").into_any()
                })}
                {(!m.is_you).then(|| if m.admin {
                    button(id, "make_member", "Make member", "button ghost").into_any()
                } else {
                    button(id, "make_admin", "Make admin", "button ghost").into_any()
                })}
                <details class="confirm">
                    <summary class="button ghost" data-action="quota">"Quota…"</summary>
                    <ActionForm action=quota attr:class="form quota-form">
                        <input type="hidden" name="id" value=id />
                        <div class="field"><label for=format!("qw{id}")>"Workspaces"</label>
                            <input id=format!("qw{id}") name="workspaces" inputmode="numeric" value=q(m.quota_workspaces) placeholder="default" /></div>
                        <div class="field"><label for=format!("qr{id}")>"Running at once"</label>
                            <input id=format!("qr{id}") name="running" inputmode="numeric" value=q(m.quota_running) placeholder="default" /></div>
                        <div class="field"><label for=format!("qm{id}")>"Memory per workspace (MiB)"</label>
                            <input id=format!("qm{id}") name="memory_mb" inputmode="numeric" value=q(m.quota_memory_mb) placeholder="the template's" /></div>
                        <button type="submit" class="button primary">"Save quota"</button>
                    </ActionForm>
                </details>
                {(!m.is_you).then(|| view! {
                    <details class="confirm">
                        <summary class="button danger" data-action="delete">"Delete"</summary>
                        <p>"Delete " <strong>{m.username.clone()}</strong> ", their workspaces and files?"</p>
                        {button(id, "delete", "Yes, delete the account", "button danger")}
                    </details>
                })}
            </div>
        </li>
    }
}

#[component]
pub fn AdminWorkspacesPage() -> impl IntoView {
    view! {
        <Title text="Workspaces · Admin · QingTing Studio" />
        <RequireAdmin><AllWorkspaces /></RequireAdmin>
    }
}

#[component]
fn AllWorkspaces() -> impl IntoView {
    let tick = ticker();
    let act = ServerAction::<AdminWorkspaceAction>::new();
    // The list as first shown (rendered on the server too).
    let list = Resource::new(|| (), |_| admin_workspaces());
    // Figures change every refresh: rows read them from here instead of being rebuilt (which
    // would close an open Delete confirmation).
    let rows = RwSignal::new(Vec::<AdminWorkspaceRow>::new());
    let live = Resource::new(
        move || (tick.get(), act.version().get()),
        |_| admin_workspaces(),
    );
    Effect::new(move |_| {
        if let Some(Ok(l)) = live.get() {
            rows.set(l);
        }
    });
    view! {
        <AdminTabs />
        <section class="card settings-section">
            <FormAlert message=action_error(act) />
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(first) => {
                            rows.set(first);
                            view! {
                                {move || rows.with(Vec::is_empty).then(|| view! { <p class="muted">"No workspaces yet."</p> })}
                                <ul class="admin-list" id="all-workspaces">
                                    <For each=move || rows.get() key=|w| (w.id, w.state.clone(), w.reason.clone()) let:w>
                                        <WorkspaceItem w act rows />
                                    </For>
                                </ul>
                            }.into_any()
                        }
                        Err(e) => view! { <p class="alert alert-error" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn WorkspaceItem(
    w: AdminWorkspaceRow,
    act: ServerAction<AdminWorkspaceAction>,
    rows: RwSignal<Vec<AdminWorkspaceRow>>,
) -> impl IntoView {
    let id = w.id;
    let button = move |action: &'static str, label: &'static str, class: &'static str| {
        view! {
            <ActionForm action=act attr:class="inline-form">
                <input type="hidden" name="id" value=id />
                <input type="hidden" name="action" value=action />
                <button type="submit" class=class data-action=action>{label}</button>
            </ActionForm>
        }
    };
    let figures = move || {
        rows.with(|all| {
            let Some(r) = all.iter().find(|r| r.id == id) else {
                return String::new();
            };
            let mut parts = Vec::new();
            if let Some(m) = r.memory_bytes {
                parts.push(match r.memory_limit_bytes {
                    Some(l) => format!("{} of {}", human_bytes(m), human_bytes(l)),
                    None => human_bytes(m),
                });
            }
            if let Some(c) = r.cpu_percent {
                parts.push(format!("CPU {c}%"));
            }
            parts.push(match r.idle_secs {
                Some(0) => "in use".into(),
                Some(s) => format!("last used {}", ago(s as i64)),
                None => "no use seen".into(),
            });
            parts.join(" · ")
        })
    };
    let state_class = format!("badge state-{}", w.state);
    view! {
        <li class="admin-row" data-workspace=format!("{}/{}", w.owner, w.name)>
            <div class="admin-row-head">
                <strong>{format!("{}/{}", w.owner, w.name)}</strong>
                <span class="muted">{w.template.clone()}</span>
                <span class=state_class data-state=w.state.clone()>{w.state.clone()}</span>
            </div>
            {w.reason.clone().map(|r| view! { <pre class="reason">{r}</pre> })}
            <p class="muted usage">{figures}</p>
            <div class="actions">
                {w.can_stop.then(|| button("stop", "Stop", "button"))}
                {w.can_start.then(|| button("start", "Start", "button"))}
                <details class="confirm">
                    <summary class="button danger" data-action="delete">"Delete"</summary>
                    <p>"Delete " <strong>{format!("{}/{}", w.owner, w.name)}</strong> " and all its files?"</p>
                    {button("delete", "Yes, delete it", "button danger")}
                </details>
            </div>
        </li>
    }
}

#[component]
pub fn AdminAuditPage() -> impl IntoView {
    view! {
        <Title text="Audit log · Admin · QingTing Studio" />
        <RequireAdmin><Audit /></RequireAdmin>
    }
}

#[component]
fn Audit() -> impl IntoView {
    let tick = ticker();
    let action = RwSignal::new(String::new());
    let user = RwSignal::new(String::new());
    let outcome = RwSignal::new(String::new());
    // Older pages: the `before` of each page shown after the first.
    let before = RwSignal::new(None::<i64>);
    let page = Resource::new(
        move || {
            (
                tick.get(),
                action.get(),
                user.get(),
                outcome.get(),
                before.get(),
            )
        },
        |(_, a, u, o, b)| admin_audit(a, u, o, b),
    );
    let filter = move |sig: RwSignal<String>| {
        move |ev: leptos::ev::Event| {
            before.set(None);
            sig.set(event_target_value(&ev));
        }
    };
    view! {
        <AdminTabs />
        <section class="card settings-section">
            <div class="filters">
                <div class="field">
                    <label for="audit-action">"Action"</label>
                    <select id="audit-action" on:change=filter(action)>
                        <option value="">"Any"</option>
                        {crate::api::admin::AUDIT_ACTIONS.iter().map(|a| view! { <option value=*a>{*a}</option> }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="audit-user">"User"</label>
                    <input id="audit-user" type="search" placeholder="user name" on:input=filter(user) />
                </div>
                <div class="field">
                    <label for="audit-outcome">"Outcome"</label>
                    <select id="audit-outcome" on:change=filter(outcome)>
                        <option value="">"Any"</option>
                        <option value="ok">"ok"</option>
                        <option value="refused">"refused"</option>
                        <option value="failed">"failed"</option>
                    </select>
                </div>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(p) => audit_table(p, before).into_any(),
                        Err(e) => view! { <p class="alert alert-error" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

fn audit_table(p: AuditPage, before: RwSignal<Option<i64>>) -> impl IntoView {
    let next = p.before;
    let first = before.get_untracked().is_some();
    view! {
        {if p.entries.is_empty() {
            view! { <p class="muted">"Nothing matches."</p> }.into_any()
        } else {
            view! {
                <ul class="admin-list audit" id="audit">
                    {p.entries.into_iter().map(|e| { let (a, o) = (e.action.clone(), e.outcome.clone()); view! {
                        <li class="admin-row" data-action=a data-outcome=o>
                            <div class="admin-row-head">
                                <strong>{e.action}</strong>
                                <span class=format!("badge outcome-{}", e.outcome)>{e.outcome.clone()}</span>
                                <time class="muted">{e.time}</time>
                            </div>
                            <p>
                                {e.actor}
                                {e.subject.map(|s| format!(" → {s}"))}
                                {e.address.map(|a| view! { <span class="muted">{format!(" from {a}")}</span> })}
                            </p>
                            {e.detail.map(|d| view! { <p class="muted detail">{d}</p> })}
                        </li>
                    }}).collect_view()}
                </ul>
            }.into_any()
        }}
        <div class="actions">
            {first.then(|| view! { <button class="button ghost" on:click=move |_| before.set(None)>"Newest"</button> })}
            {next.map(|b| view! { <button class="button ghost" id="older" on:click=move |_| before.set(Some(b))>"Older"</button> })}
        </div>
    }
}
