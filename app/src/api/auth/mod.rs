//! Sign-up, sign-in, sign-out and "who am I".

mod current_user;
mod login;
mod logout;
mod register;

pub use current_user::{current_user, sign_in_options, CurrentUser, SignInChoices, UserView};
pub use login::{login, Login};
pub use logout::{logout, Logout};
pub use register::{register, Register};
