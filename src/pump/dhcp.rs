//! stackcmd strings and requests that wait for the engine's DHCP client.
//!
//! A stackcmd string runs command by command; a DHCP client command
//! (`udhcpc`, `dhclient`, read by `cmd`) starts the engine's client and parks
//! the rest of the string with its reply, so the pump goes on serving frames
//! and sockets while the lease is on its way (the string's caller waits, as
//! `vde_stackcmd` waits for the real program). When the engine reports a lease
//! or that the tries ran out, the parked strings go on (or end with the
//! program's status) and the `Stack::dhcp` requests get their answer.

use super::Pump;
use crate::cmd::{CmdError, DhcpCommand};
use crate::engine::{DhcpAttempt, DhcpLease as Lease, DhcpNews};
use crossbeam_channel::Sender;
use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;

/// Who waits for the DHCP client.
pub(super) enum Waiter {
    /// A stackcmd string stopped at a DHCP client command: the command, the
    /// commands after it, what the commands before printed, and the reply.
    Cmd {
        command: DhcpCommand,
        rest: VecDeque<Vec<String>>,
        out: String,
        reply: Sender<Result<String, CmdError>>,
    },
    /// A `Stack::dhcp` request.
    Lease(Sender<io::Result<Lease>>),
}

impl Pump {
    /// Runs the commands of a stackcmd string in order, stopping at the first
    /// failure; a DHCP client command parks the rest until the client answers.
    pub(super) fn run_cmds(
        &mut self,
        mut cmds: VecDeque<Vec<String>>,
        mut out: String,
        reply: Sender<Result<String, CmdError>>,
    ) {
        while let Some(argv) = cmds.pop_front() {
            let result = match crate::cmd::dhcp_command(&argv) {
                None => self.engine.run_argv(&argv),
                Some(Err(e)) => Err(e),
                Some(Ok(command)) => match self.start_client(&command) {
                    Err(e) => Err(e),
                    Ok(()) if command.detach_now => Ok(String::new()),
                    Ok(()) => {
                        self.publish_config();
                        self.dhcp_waiters.push(Waiter::Cmd {
                            command,
                            rest: cmds,
                            out,
                            reply,
                        });
                        return;
                    }
                },
            };
            match result {
                Ok(printed) => out.push_str(&printed),
                Err(e) => {
                    self.publish_config();
                    let _ = reply.send(Err(e));
                    return;
                }
            }
        }
        self.publish_config();
        let _ = reply.send(Ok(out));
    }

    /// Starts the engine's client for a DHCP client command; its interface
    /// must be the stack's (dhclient naming none takes the stack's own).
    fn start_client(&mut self, command: &DhcpCommand) -> Result<(), CmdError> {
        let ifname = if command.ifname.is_empty() {
            let links = self.engine.config().links();
            let ether = links.iter().find(|l| l.kind == crate::cmd::LinkKind::Ether);
            ether.map_or_else(String::new, |l| l.name.clone())
        } else {
            command.ifname.clone()
        };
        let attempt = DhcpAttempt {
            tries: command.tries,
            interval: command.interval,
            renew: command.renew,
            background: command.fail_status.is_none(),
        };
        self.engine.start_dhcp(&ifname, attempt).map_err(|_| {
            // What each program says when its interface does not exist.
            match command.program {
                "udhcpc" => CmdError::new(1, "udhcpc: ioctl 0x8933 failed: No such device"),
                _ => CmdError::new(1, format!("dhclient: Unknown interface {ifname}")),
            }
        })
    }

    /// A `Stack::dhcp` request: the client starts (or is joined) and the reply
    /// waits for its news.
    pub(super) fn dhcp(
        &mut self,
        ifname: &str,
        attempt: DhcpAttempt,
        reply: Sender<io::Result<Lease>>,
    ) {
        match self.engine.start_dhcp(ifname, attempt) {
            Ok(()) => {
                self.publish_config();
                self.dhcp_waiters.push(Waiter::Lease(reply));
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// What the engine's client reported: the configuration it changed goes to
    /// the application threads, a lease's name servers to the stack, and
    /// whoever waits gets the answer.
    pub(super) fn dhcp_news(&mut self, news: DhcpNews) {
        self.publish_config();
        let lease = match news {
            DhcpNews::Bound(lease) => {
                let servers = lease.name_servers.iter().map(|&a| IpAddr::V4(a));
                if let Ok(mut cell) = self.lease_servers.lock() {
                    *cell = Some(servers.collect());
                }
                Some(lease)
            }
            DhcpNews::NoLease => None,
            // Nobody waits for a loss: the client goes on discovering.
            DhcpNews::Lost => return,
        };
        for waiter in std::mem::take(&mut self.dhcp_waiters) {
            match waiter {
                Waiter::Lease(reply) => {
                    let answer = lease
                        .clone()
                        .ok_or_else(|| io::Error::from_raw_os_error(libc::ETIMEDOUT));
                    let _ = reply.send(answer);
                }
                Waiter::Cmd {
                    command,
                    rest,
                    mut out,
                    reply,
                } => match lease
                    .as_ref()
                    .map_or_else(|| command.no_lease(), |_| Ok(String::new()))
                {
                    Ok(printed) => {
                        out.push_str(&printed);
                        self.run_cmds(rest, out, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                },
            }
        }
    }

    /// Gives application threads the engine's configuration as it is now.
    pub(super) fn publish_config(&mut self) {
        if let Ok(mut view) = self.config_view.lock() {
            *view = Arc::new(self.engine.config().clone());
        }
    }
}
