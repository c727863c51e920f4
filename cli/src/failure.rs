//! Why a command failed, as a message a person can act on and an exit code a script can test.
//!
//! This module must never print: `output` decides where and how a failure is shown.

use netref::{kinds, Error};

/// A failed command.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The command line asked for something impossible (exit 2).
    Usage(String),
    /// A netref operation failed; `doing` says what the tool was doing (`connecting to :9000`).
    Netref { doing: String, error: Error },
    /// The registry could not name a live address for the service (exit 3).
    Discovery(String),
}

impl Failure {
    pub(crate) fn netref(doing: impl Into<String>) -> impl FnOnce(Error) -> Failure {
        let doing = doing.into();
        move |error| Failure::Netref { doing, error }
    }

    /// The exit code, as `netref --help` documents them.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Discovery(_) => 3,
            Failure::Netref { error, .. } => match error {
                Error::Remote(_) | Error::AccessDenied(_) | Error::Convert(_) | Error::LimitReached(_) => 1,
                Error::Backpressure(_) => 1,
                Error::Timeout(_) => 4,
                _ => 3,
            },
        }
    }

    /// A short name of the failure's class, for `--json` output.
    pub(crate) fn class(&self) -> &'static str {
        match self.exit_code() {
            1 => "remote",
            2 => "usage",
            4 => "timeout",
            _ => "connection",
        }
    }

    /// One line saying what happened and, where the tool can tell, what to do about it;
    /// `verbose` appends a remote traceback.
    pub(crate) fn message(&self, verbose: bool) -> String {
        match self {
            Failure::Usage(why) => why.clone(),
            Failure::Discovery(why) => why.clone(),
            Failure::Netref { doing, error } => {
                let mut text = format!("{doing}: {}", describe(error));
                if let Some(hint) = hint(error, verbose) {
                    text.push_str("\n  hint: ");
                    text.push_str(&hint);
                }
                if verbose {
                    if let Some(remote) = error.as_remote().filter(|r| !r.traceback.is_empty()) {
                        text.push_str("\n\n========= Remote Traceback =========\n");
                        text.push_str(remote.traceback.trim_end());
                    }
                }
                text
            }
        }
    }
}

fn describe(error: &Error) -> String {
    match error {
        Error::Io(why) if why.contains("refused") => format!("connection refused ({why})"),
        other => other.to_string(),
    }
}

fn hint(error: &Error, verbose: bool) -> Option<String> {
    match error {
        Error::Io(why) if why.contains("refused") => {
            Some("is the server running, and listening on this address and port?".into())
        }
        Error::Io(why) if why.contains("No such file") => Some("no Unix socket at that path".into()),
        Error::Remote(r) if r.is(kinds::ACCESS_DENIED) => Some(
            "the server's access policy refuses this name (netref: AccessPolicy, e.g. exposed or public \
             attributes; RPyC: allow_public_attrs / allow_setattr)"
                .into(),
        ),
        Error::Remote(r) if r.is(kinds::ATTRIBUTE_ERROR) => {
            Some("`netref dir ADDR [PATH]` lists the names the object exposes".into())
        }
        Error::Remote(r) if !verbose && !r.traceback.is_empty() => Some("-v shows the remote traceback".into()),
        Error::Timeout(_) => Some("raise --timeout, or check that the server is not stalled".into()),
        Error::Tls(_) => Some("check --ca (the server's CA), --server-name and --cert/--key".into()),
        Error::Protocol(netref::ProtocolError::VersionMismatch { .. }) => {
            Some("this netref and the server speak different protocol versions; upgrade the older side".into())
        }
        Error::Protocol(_) | Error::ConnectionClosed(_) => {
            Some("is this a netref server? for a Python RPyC server add --rpyc".into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use netref::RemoteError;

    use super::*;

    #[test]
    fn each_error_class_has_its_documented_exit_code() {
        let remote = Error::from(RemoteError::new(kinds::KEY_ERROR, "'x'"));
        assert_eq!(Failure::netref("calling")(remote).exit_code(), 1);
        assert_eq!(Failure::Usage("bad".into()).exit_code(), 2);
        assert_eq!(Failure::netref("connecting")(Error::Io("Connection refused".into())).exit_code(), 3);
        assert_eq!(Failure::netref("connecting")(Error::Timeout(Duration::from_secs(1))).exit_code(), 4);
        assert_eq!(Failure::Discovery("none".into()).exit_code(), 3);
    }

    #[test]
    fn a_refused_connection_says_what_to_check() {
        let msg =
            Failure::netref("connecting to :1")(Error::Io("Connection refused (os error 111)".into())).message(false);
        assert!(msg.starts_with("connecting to :1: connection refused"), "{msg}");
        assert!(msg.contains("is the server running"), "{msg}");
    }

    #[test]
    fn the_traceback_shows_only_when_verbose() {
        let e = Error::from(RemoteError::new(kinds::VALUE_ERROR, "bad").with_traceback("  in div"));
        let quiet = Failure::netref("calling div")(e.clone()).message(false);
        let verbose = Failure::netref("calling div")(e).message(true);
        assert!(!quiet.contains("in div") && quiet.contains("-v shows"), "{quiet}");
        assert!(verbose.ends_with("Remote Traceback =========\n  in div"), "{verbose}");
    }
}
