//! Printing: text for people (aligned columns, colour only on a terminal and never with
//! `NO_COLOR`) or, with `--json`, one JSON document per command on stdout.
//!
//! This module must never talk to a peer; commands hand it finished values.

use std::io::{IsTerminal, Write};

use serde_json::{json, Value as Json};

use crate::failure::Failure;

/// Where and how results and failures are shown.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) json: bool,
    verbose: bool,
    colour_out: bool,
    colour_err: bool,
}

impl Output {
    pub(crate) fn new(json: bool, verbose: bool) -> Output {
        let allowed = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Output {
            json,
            verbose,
            colour_out: allowed && std::io::stdout().is_terminal(),
            colour_err: allowed && std::io::stderr().is_terminal(),
        }
    }

    /// Prints a document (with `--json`) or text (without), one or the other.
    pub(crate) fn emit(&self, doc: impl FnOnce() -> Json, text: impl FnOnce(&Output) -> String) {
        let mut stdout = std::io::stdout().lock();
        let printed = if self.json {
            writeln!(stdout, "{}", doc())
        } else {
            let text = text(self);
            write!(stdout, "{text}{}", if text.ends_with('\n') || text.is_empty() { "" } else { "\n" })
        };
        // A closed stdout (`netref ... | head -1`) ends the output, not the program.
        let _ = printed.and_then(|()| stdout.flush());
    }

    /// `text` in bold when stdout is a terminal.
    pub(crate) fn bold(&self, text: &str) -> String {
        if self.colour_out {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// `text` dimmed when stdout is a terminal.
    pub(crate) fn dim(&self, text: &str) -> String {
        if self.colour_out {
            format!("\x1b[2m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Rows as aligned columns (the last column is not padded); `style` decorates a cell after
    /// it is padded, so escape codes never disturb the alignment.
    pub(crate) fn table(&self, rows: &[Vec<String>], style: impl Fn(usize, &str) -> String) -> String {
        let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for row in rows {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| {
                    let padded = if c + 1 == row.len() { cell.clone() } else { format!("{cell:<w$}", w = widths[c]) };
                    style(c, &padded)
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    /// A failure: its message on stderr, and with `--json` also a document on stdout.
    pub(crate) fn failure(&self, failure: &Failure) {
        let message = failure.message(self.verbose);
        if self.json {
            let doc = json!({"ok": false, "error": {
                "class": failure.class(), "exit_code": failure.exit_code(), "message": failure.message(true)
            }});
            let _ = writeln!(std::io::stdout(), "{doc}");
        }
        let prefix = if self.colour_err { "\x1b[1;31merror:\x1b[0m" } else { "error:" };
        let _ = writeln!(std::io::stderr(), "{prefix} {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_every_column_but_the_last() {
        let out = Output { json: false, verbose: false, colour_out: false, colour_err: false };
        let rows = vec![vec!["add".to_owned(), "method".to_owned()], vec!["memory".to_owned(), "attribute".to_owned()]];
        assert_eq!(out.table(&rows, |_, s| s.to_owned()), "add     method\nmemory  attribute\n");
    }
}
