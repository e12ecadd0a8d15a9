//! The arguments of the commands that install uringtrace into a shell or a system:
//! `completions` and `man-pages`.

use std::path::PathBuf;

use clap::Args;

pub(super) const COMPLETIONS_HELP: &str =
    "Install the script where your shell looks for it (the .deb does this for bash, zsh
and fish), then open a new shell:
  bash        ~/.local/share/bash-completion/completions/uringtrace (needs the
              bash-completion package; system-wide:
              /usr/share/bash-completion/completions/uringtrace)
  zsh         a directory on $fpath, as _uringtrace: e.g. ~/.zfunc/_uringtrace, with
              fpath=(~/.zfunc $fpath) before compinit in ~/.zshrc (system-wide:
              /usr/share/zsh/vendor-completions/_uringtrace)
  fish        ~/.config/fish/completions/uringtrace.fish (system-wide:
              /usr/share/fish/vendor_completions.d/uringtrace.fish)
  elvish      eval the output from ~/.config/elvish/rc.elv
  powershell  run the output from your $PROFILE

Examples:
  uringtrace completions bash > ~/.local/share/bash-completion/completions/uringtrace
  source <(uringtrace completions bash)          # this bash session only
  uringtrace completions zsh > ~/.zfunc/_uringtrace
  uringtrace completions fish > ~/.config/fish/completions/uringtrace.fish
  echo 'eval (uringtrace completions elvish | slurp)' >> ~/.config/elvish/rc.elv
  uringtrace completions powershell | Out-String | Invoke-Expression";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManPagesArgs {
    /// Directory to write the pages into (created if missing)
    pub dir: PathBuf,
}
