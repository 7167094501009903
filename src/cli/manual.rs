//! Shell completion scripts (bash, zsh, fish) and the man page pagerduty-event(1), generated from the command line's definition for the packages to install.

use std::io::Write;

use super::{EXIT_OK, Stop};

/// The shells completions are generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// `pagerduty-event completions SHELL`: the completion script on stdout.
pub(crate) fn completions(shell: Shell) -> Result<i32, Stop> {
    let full = super::command();
    let name = super::PROGRAM;
    // the commands users type: not the hidden ones that serve the packaging
    let mut cmd = clap::Command::new(name)
        .version(crate::VERSION)
        .subcommands(full.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(generator, &mut cmd, name, &mut out);
    let mut text = String::from_utf8_lossy(&out).into_owned();
    if shell == Shell::Bash {
        // clap_complete's bash script spells a hyphenated program's state one way where it
        // walks the words (pagerduty__event__subcmd__flush) and another in the case arms
        // (pagerduty__subcmd__event__subcmd__flush), so no subcommand's options complete
        // (clap-rs/clap#6421): the arms are respelled as the walk spells them
        let walk = name.replace('-', "__");
        let arms = name.replace('-', "__subcmd__");
        text = text.replace(&arms, &walk);
    }
    write_out(text.as_bytes())
}

/// `pagerduty-event man`: the man page (roff) on stdout.
pub(crate) fn man_page() -> Result<i32, Stop> {
    let mut out = Vec::new();
    render_man(&mut out).map_err(|e| Stop::Failed(format!("cannot render the man page: {e}")))?;
    write_out(&out)
}

/// The whole page: the command, then one section per (visible) subcommand with its
/// synopsis, description and options.
fn render_man(out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut cmd = super::command();
    cmd.build();
    let title = cmd.get_name().to_uppercase();
    let man = clap_mangen::Man::new(cmd.clone()).title(&title);
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    let visible: Vec<&clap::Command> = cmd.get_subcommands().filter(|c| !c.is_hide_set()).collect();
    writeln!(out, ".SH COMMANDS")?;
    for sub in &visible {
        writeln!(out, ".TP\n\\fB{}\\fR", sub.get_name())?;
        if let Some(about) = sub.get_about() {
            writeln!(out, "{}", escape(&about.to_string()))?;
        }
    }
    for sub in visible {
        let bin = format!("{} {}", cmd.get_name(), sub.get_name());
        let sub = sub.clone().bin_name(&bin).display_name(&bin);
        let page = clap_mangen::Man::new(sub.clone()).title(&title);
        let mut part = Vec::new();
        page.render_synopsis_section(&mut part)?;
        page.render_description_section(&mut part)?;
        page.render_options_section(&mut part)?;
        writeln!(out, ".SH \"{}\"", bin.to_uppercase())?;
        // the subcommand's own sections become subsections of its section
        let part = String::from_utf8_lossy(&part).replace(".SH ", ".SS ");
        out.write_all(part.as_bytes())?;
        if let Some(notes) = sub.get_after_help() {
            preformatted(out, ".SS NOTES", &notes.to_string())?;
        }
    }
    if let Some(notes) = cmd.get_after_help() {
        preformatted(out, ".SH NOTES", &notes.to_string())?;
    }
    man.render_version_section(out)
}

/// A heading and text laid out as written (the help's tables and exit statuses).
fn preformatted(out: &mut Vec<u8>, heading: &str, text: &str) -> std::io::Result<()> {
    writeln!(out, "{heading}\n.nf")?;
    for line in text.lines() {
        writeln!(out, "{}", escape(line))?;
    }
    writeln!(out, ".fi")
}

/// Text for a roff line: no leading control character, backslashes escaped.
fn escape(text: &str) -> String {
    let t = text.replace('\\', "\\e");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

fn write_out(bytes: &[u8]) -> Result<i32, Stop> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Stop::Failed(format!("cannot write to standard output: {e}")))?;
    Ok(EXIT_OK)
}
