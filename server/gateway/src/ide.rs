//! How an IDE is launched, the same for the local runtime's sandbox and for `qingting-shell`
//! in a workspace image: its command line's placeholders and its environment.

use std::path::Path;

/// Fills `{editors}`, `{files}`, `{ide}` and `{socket}` in an IDE's command line.
pub fn fill(
    command: &[String],
    editors: &Path,
    files: &Path,
    ide: &Path,
    socket: &Path,
) -> Vec<String> {
    let values = [
        ("{editors}", editors.display().to_string()),
        ("{files}", files.display().to_string()),
        ("{ide}", ide.display().to_string()),
        ("{socket}", socket.display().to_string()),
    ];
    command
        .iter()
        .map(|arg| values.iter().fold(arg.clone(), |a, (k, v)| a.replace(k, v)))
        .collect()
}

/// The whole environment an IDE starts with: nothing of its launcher's (no secrets), its own
/// HOME and Jupyter/IPython dirs under `ide`, and `path` as PATH.
pub fn env(ide: &Path, path: &str) -> Vec<(String, String)> {
    let d = |sub: &str| ide.join(sub).display().to_string();
    vec![
        ("HOME".into(), d("home")),
        ("PATH".into(), path.into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("SHELL".into(), "/bin/bash".into()),
        ("JUPYTER_CONFIG_DIR".into(), d("jupyter/config")),
        ("JUPYTER_DATA_DIR".into(), d("jupyter/data")),
        ("JUPYTER_RUNTIME_DIR".into(), d("jupyter/runtime")),
        ("IPYTHONDIR".into(), d("ipython")),
    ]
}
