//! The signed-in user's own account: profile, password, GitHub link, avatar, API tokens,
//! deletion.

mod account;
mod profile;
mod tokens;

pub use account::{
    change_password, delete_account, unlink_github, ChangePassword, DeleteAccount, UnlinkGithub,
};
pub use profile::{
    my_profile, remove_avatar, save_profile, MyProfile, ProfileView, RemoveAvatar, SaveProfile,
};
pub use tokens::{
    create_token, my_tokens, revoke_token, CreateToken, NewToken, RevokeToken, TokenRow,
};
