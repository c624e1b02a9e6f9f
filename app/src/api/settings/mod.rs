//! The signed-in user's own account: profile, password, GitHub link, avatar, deletion.

mod account;
mod profile;

pub use account::{
    change_password, delete_account, unlink_github, ChangePassword, DeleteAccount, UnlinkGithub,
};
pub use profile::{
    my_profile, remove_avatar, save_profile, MyProfile, ProfileView, RemoveAvatar, SaveProfile,
};
