//! The DHCP client commands of a stackcmd string: busybox `udhcpc` and ISC
//! `dhclient`, as users write them for the reference (which runs them as real
//! programs in its namespace).
//!
//! Only the words are read here (pure, as the rest of `cmd`): what to run,
//! how many tries, what status a failure gives. The client itself is the
//! engine's (a lease needs frames and time); a stack's pump runs it and answers
//! the command when the lease arrives or the tries run out. The `ip` model on
//! its own ([`super::NetConfig::run`]) has no network to ask: it refuses them.
//!
//! What each program does, and what the stack does for it:
//! - `udhcpc [-i IF] [-t N] [-T S] [-q] [-n] [-f] [-b]...`: N DISCOVERs
//!   (default 3) S seconds apart (default 3); a lease: status 0. Without a
//!   lease, with `-n`: status 1 (`no lease, failing`); without `-n` the real
//!   program goes on trying forever (in the background with `-b`): the command
//!   returns 0 and the client goes on trying in the background, as with `-b`.
//!   Without `-q` the lease is renewed while the stack lives (the real program
//!   stays to renew it); with `-q` the client stops once it has the lease.
//!   `-s SCRIPT` is refused (status 2): the stack applies the lease itself, as
//!   the default script would.
//! - `dhclient [-1] [-v] [-d] [-4] [-nw] [IF]`: about 60 seconds of DISCOVERs;
//!   with `-1`, no lease gives status 2 (its "Unable to obtain a lease on first
//!   try"); without it, status 0 and the client goes on in the background, as
//!   dhclient does. `-nw` returns at once.
//!
//! Options either program does not know fail as they do: status 1 with its
//! complaint.

use super::error::CmdError;
use std::time::Duration;

/// The names the command words may have (the reference runs them with
/// `execv`; bare names are taken too, as users write them).
const UDHCPC: [&str; 5] = [
    "udhcpc",
    "/sbin/udhcpc",
    "/bin/udhcpc",
    "/usr/sbin/udhcpc",
    "/usr/bin/udhcpc",
];
const BUSYBOX: [&str; 4] = [
    "busybox",
    "/bin/busybox",
    "/usr/bin/busybox",
    "/sbin/busybox",
];
const DHCLIENT: [&str; 4] = [
    "dhclient",
    "/sbin/dhclient",
    "/usr/sbin/dhclient",
    "/bin/dhclient",
];

/// A DHCP client command, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DhcpCommand {
    /// `udhcpc` or `dhclient`: the name its messages start with.
    pub program: &'static str,
    /// The interface; empty: the stack's own (dhclient with none named).
    pub ifname: String,
    /// DISCOVERs before the command answers without a lease.
    pub tries: u32,
    /// The wait between DISCOVERs and after the last.
    pub interval: Duration,
    /// Keep the lease renewed once obtained.
    pub renew: bool,
    /// The status of no lease; `None`: status 0, and the client goes on
    /// trying in the background.
    pub fail_status: Option<i32>,
    /// Answer at once (status 0), the client trying in the background.
    pub detach_now: bool,
}

impl DhcpCommand {
    /// A program's command before its options: `tries` DISCOVERs 3 s apart
    /// (udhcpc's default `-T`, and dhclient's first interval), renewed, going
    /// on in the background without a lease.
    fn with_defaults(program: &'static str, ifname: &str, tries: u32) -> DhcpCommand {
        DhcpCommand {
            program,
            ifname: ifname.to_owned(),
            tries,
            interval: Duration::from_secs(3),
            renew: true,
            fail_status: None,
            detach_now: false,
        }
    }

    /// What the command answers when its tries ran out without a lease.
    pub(crate) fn no_lease(&self) -> Result<String, CmdError> {
        match (self.fail_status, self.program) {
            (Some(status), "udhcpc") => Err(CmdError::new(status, "udhcpc: no lease, failing")),
            (Some(status), _) => Err(CmdError::new(
                status,
                "Unable to obtain a lease on first try.  Exiting.",
            )),
            (None, _) => Ok(String::new()),
        }
    }
}

/// The DHCP client command `argv` is, read (or its error); `None` if it is
/// not one.
pub(crate) fn dhcp_command(argv: &[String]) -> Option<Result<DhcpCommand, CmdError>> {
    let path = argv.first()?.as_str();
    if UDHCPC.contains(&path) {
        return Some(udhcpc(&argv[1..]));
    }
    if BUSYBOX.contains(&path) && argv.get(1).is_some_and(|a| a == "udhcpc") {
        return Some(udhcpc(&argv[2..]));
    }
    if DHCLIENT.contains(&path) {
        return Some(dhclient(&argv[1..]));
    }
    None
}

/// What a DHCP client command meets outside a stack (the `ip` model alone).
pub(crate) fn without_stack(argv: &[String]) -> Option<CmdError> {
    let command = dhcp_command(argv)?;
    Some(command.err().unwrap_or_else(|| {
        CmdError::new(
            2,
            "vdestack: a DHCP client needs a stack's network (the ip model alone has none)",
        )
    }))
}

fn udhcpc_usage(complaint: String) -> CmdError {
    CmdError::new(
        1,
        format!(
            "udhcpc: {complaint}\nUsage: udhcpc [-fbqRB] [-a[MSEC]] [-t N] [-T SEC] [-A SEC|-n]\n\
             \t[-i IFACE] [-s PROG] [-p PIDFILE]\n\t[-oC] [-r IP] [-V VENDOR] [-F NAME] \
             [-x OPT:VAL]... [-O OPT]..."
        ),
    )
}

fn unsupported(program: &str, what: &str) -> CmdError {
    CmdError::new(2, format!("{program}: vdestack: {what} is not supported"))
}

/// busybox udhcpc's options (getopt: flags may be grouped, a value may follow
/// its letter or be the next word).
fn udhcpc(args: &[String]) -> Result<DhcpCommand, CmdError> {
    let mut command = DhcpCommand::with_defaults("udhcpc", "eth0", 3);
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let Some(letters) = word.strip_prefix('-').filter(|l| !l.is_empty()) else {
            return Err(udhcpc_usage(format!("unexpected argument '{word}'")));
        };
        let mut rest = letters;
        while let Some(letter) = rest.chars().next() {
            rest = &rest[letter.len_utf8()..];
            let takes_value = "istTApOxVFHrPcs".contains(letter);
            let value = if !takes_value {
                String::new()
            } else if !rest.is_empty() {
                std::mem::take(&mut rest).to_owned()
            } else {
                match words.next() {
                    Some(v) => v.clone(),
                    None => {
                        return Err(udhcpc_usage(format!(
                            "option requires an argument -- '{letter}'"
                        )))
                    }
                }
            };
            let number = |v: &str| {
                v.parse::<u32>()
                    .map_err(|_| CmdError::new(1, format!("udhcpc: invalid number '{v}'")))
            };
            match letter {
                'i' => command.ifname = value,
                't' => command.tries = number(&value)?,
                'T' => command.interval = Duration::from_secs(number(&value)?.into()),
                'q' => command.renew = false,
                'n' => command.fail_status = Some(1),
                's' => return Err(unsupported(
                    "udhcpc",
                    "-s SCRIPT (the stack applies the lease itself, as the default script does)",
                )),
                'r' => return Err(unsupported("udhcpc", "-r IP (requesting an address)")),
                'P' => return Err(unsupported("udhcpc", "-P PORT")),
                'c' => return Err(unsupported("udhcpc", "-c CLIENTID")),
                // Accepted, without effect on a stack: foreground, background
                // if no lease (what the stack does anyway), syslog, release on
                // exit, verbosity, broadcast flag, no default options, no
                // ARP check; a pid file, the pause after failing, options to
                // request or send, the vendor and host names.
                'f' | 'b' | 'S' | 'R' | 'v' | 'B' | 'o' | 'C' | 'a' | 'p' | 'A' | 'O' | 'x'
                | 'V' | 'F' | 'H' => {}
                other => return Err(udhcpc_usage(format!("invalid option -- '{other}'"))),
            }
        }
    }
    Ok(command)
}

/// ISC dhclient's options.
fn dhclient(args: &[String]) -> Result<DhcpCommand, CmdError> {
    // Its default timeout: 60 s.
    let mut command = DhcpCommand::with_defaults("dhclient", "", 20);
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "-1" => command.fail_status = Some(2),
            "-nw" => command.detach_now = true,
            "-4" | "-d" | "-v" | "-q" | "-w" | "--no-pid" => {}
            "-pf" | "-lf" | "-cf" | "-e" => {
                if words.next().is_none() {
                    return Err(CmdError::new(
                        1,
                        format!("dhclient: {word} requires an argument"),
                    ));
                }
            }
            "-sf" => {
                return Err(unsupported(
                    "dhclient",
                    "-sf SCRIPT (the stack applies the lease itself)",
                ))
            }
            "-6" | "-S" | "-T" | "-P" | "-N" | "-D" => {
                return Err(unsupported("dhclient", "DHCPv6"))
            }
            "-r" | "-x" => return Err(unsupported("dhclient", "releasing a lease")),
            flag if flag.starts_with('-') => {
                return Err(CmdError::new(1, format!("Unknown command: {flag}")))
            }
            ifname if command.ifname.is_empty() => command.ifname = ifname.to_owned(),
            _ => return Err(unsupported("dhclient", "more than one interface")),
        }
    }
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn read(s: &str) -> Result<DhcpCommand, CmdError> {
        dhcp_command(&words(s)).expect("a DHCP command")
    }

    #[test]
    fn udhcpc_reads_its_options_grouped_or_apart() {
        let c = read("/sbin/udhcpc -i vde0 -n -q -t 1 -T1").unwrap();
        assert_eq!(c.ifname, "vde0");
        assert_eq!((c.tries, c.interval), (1, Duration::from_secs(1)));
        assert_eq!((c.renew, c.fail_status), (false, Some(1)));
        let c = read("busybox udhcpc -fqni vde1").unwrap();
        assert_eq!((c.ifname.as_str(), c.fail_status), ("vde1", Some(1)));
        let c = read("udhcpc").unwrap();
        assert_eq!((c.ifname.as_str(), c.tries), ("eth0", 3));
        assert_eq!((c.renew, c.fail_status), (true, None));
        assert!(c.no_lease().is_ok());
        assert_eq!(
            read("udhcpc -n").unwrap().no_lease().unwrap_err().status(),
            1
        );
    }

    #[test]
    fn udhcpc_refuses_what_it_or_the_stack_cannot_do() {
        assert_eq!(read("udhcpc -s /x").unwrap_err().status(), 2);
        assert!(read("udhcpc -s /x")
            .unwrap_err()
            .message()
            .contains("-s SCRIPT"));
        let e = read("udhcpc -z").unwrap_err();
        assert_eq!(e.status(), 1);
        assert!(e.message().starts_with("udhcpc: invalid option -- 'z'"));
        assert_eq!(read("udhcpc -t x").unwrap_err().status(), 1);
        assert_eq!(read("udhcpc -i").unwrap_err().status(), 1);
        assert_eq!(read("udhcpc vde0").unwrap_err().status(), 1);
        assert!(dhcp_command(&words("/bin/ip link")).is_none());
        assert!(dhcp_command(&words("busybox ls")).is_none());
    }

    #[test]
    fn dhclient_reads_its_options() {
        let c = read("dhclient -1 -v vde0").unwrap();
        assert_eq!((c.ifname.as_str(), c.fail_status), ("vde0", Some(2)));
        assert_eq!(c.no_lease().unwrap_err().status(), 2);
        let c = read("/sbin/dhclient").unwrap();
        assert_eq!((c.ifname.as_str(), c.detach_now), ("", false));
        assert!(read("dhclient -nw vde0").unwrap().detach_now);
        assert_eq!(read("dhclient -z").unwrap_err().status(), 1);
        assert_eq!(read("dhclient -6 vde0").unwrap_err().status(), 2);
        assert_eq!(read("dhclient -sf /x").unwrap_err().status(), 2);
        assert_eq!(without_stack(&words("udhcpc -i vde0")).unwrap().status(), 2);
    }
}
