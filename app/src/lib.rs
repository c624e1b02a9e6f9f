//! QingTing Studio's user interface and API: pages, components and server functions.
//! Compiled twice: with `ssr` into the server, with `hydrate` into the browser bundle.

pub mod api;
mod app;
mod auth;
pub mod components;
mod pages;

pub use app::{shell, App};
