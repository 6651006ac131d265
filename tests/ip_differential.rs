//! Differential test of `ip`: our model against the real iproute2 and kernel.
//!
//! Every line of `tests/data/ip_corpus.txt` is a whole `vde_stackcmd` string. It is
//! run twice, each time on a fresh configuration:
//!
//! - ours: `NetConfig::new("vde0", 02:11:22:33:44:55)` and [`NetConfig::run`];
//! - the oracle: a fresh user + network namespace (what `unshare -Urn` makes,
//!   entered by the test's child itself) where a tap device `vde0`
//!   (MAC 02:11:22:33:44:55, held open by the commands' shell so that it has a
//!   carrier, as the reference's VDE tap has) and `lo` start down, as in our
//!   model. The line is split with [`split_commands`]; each command runs with the
//!   real `ip` (stdin from `/dev/null`), stopping at the first non-zero status,
//!   which is the line's status (as `vde_stackcmd` does). Then the namespace's
//!   state is dumped with `ip -j addr show`, `ip -j -4 route show table all` and
//!   `ip -j -6 route show table all`. The lines run a few at a time, in threads.
//!
//! A command that is not one of the full paths of `ip` (`/bin/ip`, `/sbin/ip`,
//! `/usr/bin/ip`, `/usr/sbin/ip`) is never run in the oracle. The reference runs
//! commands with `execv`: a bare word (`ip ...`) makes the child exit 2. Our stack
//! also answers 2 for any other full path (it runs nothing but `ip`), so when the
//! commands before it succeed the expected status is 2, the state being what those
//! commands left; only those commands run in the oracle.
//!
//! What is compared:
//! - the exit status;
//! - the links, in index order: index, name, up flag (administrative `UP`), MTU,
//!   hardware address;
//! - each link's addresses, in the order Linux lists them: family, address, prefix
//!   length. Not compared: scope, label, broadcast, lifetimes and flags
//!   (`tentative`, `dadfailed`, `secondary`, ...): the model does not publish them
//!   in its state, and DAD never finishes in the instant between the commands
//!   and the dump (the transcripts compare them as shown, `cmd/tests.rs`); what
//!   a tentative address refuses (a route's `src`) is compared, as the model
//!   keeps its addresses tentative for as long as this test runs;
//! - every table's routes (the kernel's local table entries too), IPv4 then
//!   IPv6, in the order `ip route show table all` lists them: table (when not main), route type
//!   (`unicast` or a reject route's), destination/prefix,
//!   gateway, device, protocol (`kernel` for connected routes, `boot` for added
//!   ones), metric (as given, else 0 for IPv4 and 256/1024 for IPv6) and preferred source, all of
//!   which the model keeps; a multipath route as its nexthops, one route each
//!   (as the model keeps them). Not compared: scope (derived from the rest),
//!   `pref`, `flags` (`linkdown`, `onlink`), which the model does not keep;
//! - for a line that asks `ip route get` (and both sides succeed), what its
//!   commands printed on standard output, byte for byte: the answer is all
//!   such a command does. Other lines' output is not compared (the transcripts
//!   of `cmd/tests.rs` compare listings).
//!
//! Every disagreement is collected and printed as a table at the end; the test
//! fails unless each one is listed in [`ALLOWED`], the short list of deliberate
//! differences, with a reason.
//!
//! Where user namespaces cannot be created (`unshare -Urn true` fails), or the
//! oracle cannot be built (no `ip`, no `/dev/net/tun`), the test says so and
//! passes without comparing (the model still runs every line).

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use vdestack::cmd::{split_commands, NetConfig};

const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

/// The paths under which `vde_stackcmd` strings name `ip`.
const IP_PATHS: [&str; 4] = ["/bin/ip", "/sbin/ip", "/usr/bin/ip", "/usr/sbin/ip"];

/// Deliberate differences: (corpus line, exactly as written in the corpus; why the
/// userspace stack differs from Linux there). Keep it short: a wrong model is fixed,
/// not listed here.
const ALLOWED: &[(&str, &str)] = &[
    (
        "/bin/ip link set vde0 mtu 9001",
        "a VDE frame carries at most 9000 bytes of payload; a tap allows 65535",
    ),
    (
        "/bin/ip link del vde0",
        "the stack's interface cannot be deleted (Linux deletes the tap)",
    ),
];

/// Where the oracle's pieces are.
struct Oracle {
    ip: PathBuf,
    timeout: Option<PathBuf>,
    /// `0 UID 1` and `0 GID 1`: root in the new user namespace is us outside.
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

/// One link as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LinkState {
    /// `index:name up|down mtu N mac`
    link: String,
    /// `inet ADDR/LEN`, `inet6 ADDR/LEN`, in order.
    addrs: Vec<String>,
}

/// A namespace's (or our model's) state, normalised for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    links: Vec<LinkState>,
    routes4: Vec<String>,
    routes6: Vec<String>,
}

/// The result of one line on one side.
#[derive(Debug, Clone)]
struct Outcome {
    status: i32,
    /// Our error message, or what the real commands printed on standard error.
    message: String,
    /// What the commands printed on standard output, kept for the lines that
    /// ask `ip route get` only (see [`asks_route_get`]).
    output: Option<String>,
    state: State,
}

/// Whether a corpus line asks `ip route get`: its output is compared too
/// (the answer is all such a command does).
fn asks_route_get(line: &str) -> bool {
    line.contains(" route get ") || line.contains(" r get ") || line.contains(" route g ")
}

struct Disagreement {
    line_no: usize,
    line: String,
    ours: String,
    kernel: String,
    what: String,
}

fn find_exe(candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
}

/// Can this process create a user and network namespace?
fn userns_available() -> bool {
    Command::new("unshare")
        .args(["-Urn", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Runs in the oracle's child between `fork` and `exec` (so only system calls):
/// enters a new user and network namespace, as `unshare -Urn` does, and creates
/// the tap `vde0` there (IFF_TAP | IFF_NO_PI). Its descriptor is not
/// close-on-exec, so the shell and its commands hold it open: the tap has a
/// carrier, like the reference's, exactly as long as they run.
fn enter_namespace_with_tap(uid_map: &[u8], gid_map: &[u8]) -> io::Result<()> {
    fn check(r: libc::c_int) -> io::Result<libc::c_int> {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }
    fn write_file(path: &CStr, data: &[u8]) -> io::Result<()> {
        // SAFETY: system calls on a NUL-terminated path and a live buffer.
        unsafe {
            let fd = check(libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC))?;
            let n = libc::write(fd, data.as_ptr().cast(), data.len());
            let err = io::Error::last_os_error();
            libc::close(fd);
            match usize::try_from(n) {
                Ok(n) if n == data.len() => Ok(()),
                Ok(_) => Err(io::Error::from_raw_os_error(libc::EIO)),
                Err(_) => Err(err),
            }
        }
    }
    // SAFETY: unshare only changes this (single-threaded, forked) child.
    check(unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) })?;
    write_file(c"/proc/self/setgroups", b"deny")?;
    write_file(c"/proc/self/uid_map", uid_map)?;
    write_file(c"/proc/self/gid_map", gid_map)?;
    // SAFETY: an all-zero ifreq is valid; TUNSETIFF reads it.
    unsafe {
        let fd = check(libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR))?;
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (to, from) in ifr.ifr_name.iter_mut().zip(b"vde0") {
            *to = *from as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        check(libc::ioctl(fd, libc::TUNSETIFF, &mut ifr))?;
    }
    Ok(())
}

impl Oracle {
    fn find() -> Result<Oracle, String> {
        if !userns_available() {
            return Err("user namespaces are unavailable here (`unshare -Urn true` fails)".into());
        }
        let ip = find_exe(&IP_PATHS)
            .ok_or("iproute2's ip is not installed")?
            .canonicalize()
            .map_err(|e| format!("ip: {e}"))?;
        let timeout = find_exe(&["/usr/bin/timeout", "/bin/timeout"]);
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let oracle = Oracle {
            ip,
            timeout,
            uid_map: format!("0 {uid} 1").into_bytes(),
            gid_map: format!("0 {gid} 1").into_bytes(),
        };
        // A blank line checks the whole setup: the tap, its address, the dumps.
        let probe = oracle.run(&[], false, false)?;
        let vde0 = probe.state.links.get(1).map(|l| l.link.as_str());
        if probe.status != 0 || vde0 != Some("2:vde0 down mtu 1500 02:11:22:33:44:55") {
            return Err(format!(
                "the oracle's namespace is not as expected: {probe:?}"
            ));
        }
        Ok(oracle)
    }

    /// Runs `commands` (ip argvs, argv[0] ignored) in a fresh namespace; with
    /// `then_exec_fails`, a command the reference cannot run follows them.
    fn run(
        &self,
        commands: &[Vec<String>],
        then_exec_fails: bool,
        keep_output: bool,
    ) -> Result<Outcome, String> {
        let ip = shell_quote(&self.ip.to_string_lossy());
        // Linux marks a new IPv6 address tentative until a work queue has run
        // its DAD step, even where DAD is skipped (lo, `nodad`), and adds its
        // local route in that step; under load the next command (or the dump)
        // can come first and, say, refuse the address as a route's source. The
        // model has no such instant: after a command naming lo, wait (up to a
        // second) until lo has no tentative address; after one adding a `nodad`
        // address, until its local route is there (an address replaced with
        // `nodad` stays under the DAD it was in, which is what such a line
        // tests). The VDE link's DAD, a real second or more, is not waited
        // for, nor is the model's ever finished.
        let mut script = format!(
            "{ip} link set dev vde0 address 02:11:22:33:44:55 || {{ echo '@@SETUP failed'; exit 0; }}\n\
             settle() {{ n=0; while [ $n -lt 100 ] && [ -n \"$({ip} -6 -o addr show dev lo tentative 2>/dev/null)\" ]; do sleep 0.01; n=$((n+1)); done; }}\n\
             settle_local() {{ n=0; while [ $n -lt 100 ] && [ -z \"$({ip} -6 route show table local \"$1\" 2>/dev/null)\" ]; do sleep 0.01; n=$((n+1)); done; }}\n\
             rc=0\n"
        );
        let out = if keep_output { "" } else { " >/dev/null" };
        script.push_str("echo @@OUT\n");
        for argv in commands {
            let words: Vec<String> = argv[1..].iter().map(|w| shell_quote(w)).collect();
            let mut settle = String::new();
            if argv.iter().any(|w| w == "lo") {
                settle.push_str("; settle");
            }
            let added = argv
                .iter()
                .position(|w| w == "add")
                .and_then(|i| argv.get(i + 1));
            if let Some(addr) = added.filter(|_| argv.iter().any(|w| w == "nodad")) {
                let addr = addr.split('/').next().unwrap_or(addr);
                write!(
                    settle,
                    "; [ \"$rc\" = 0 ] && settle_local {}",
                    shell_quote(addr)
                )
                .unwrap();
            }
            writeln!(
                script,
                "if [ \"$rc\" = 0 ]; then {ip} {} </dev/null{out}; rc=$?{settle}; fi",
                words.join(" ")
            )
            .unwrap();
        }
        if then_exec_fails {
            script.push_str("if [ \"$rc\" = 0 ]; then rc=2; fi\n");
        }
        writeln!(
            script,
            "echo \"@@RC $rc\"\n\
             echo @@ADDR; {ip} -j addr show 2>/dev/null; echo\n\
             echo @@R4; {ip} -j -4 route show table all 2>/dev/null; echo\n\
             echo @@R6; {ip} -j -6 route show table all 2>/dev/null; echo\n\
             echo @@END"
        )
        .unwrap();
        let mut cmd = match &self.timeout {
            Some(t) => {
                let mut c = Command::new(t);
                c.args(["-s", "KILL", "20", "/bin/sh"]);
                c
            }
            None => Command::new("/bin/sh"),
        };
        cmd.args(["-c", &script]).stdin(Stdio::null());
        let (uid_map, gid_map) = (self.uid_map.clone(), self.gid_map.clone());
        // SAFETY: the hook makes system calls only, on data prepared before fork.
        unsafe {
            cmd.pre_exec(move || enter_namespace_with_tap(&uid_map, &gid_map));
        }
        let out = cmd
            .output()
            .map_err(|e| format!("the namespace with the tap: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
        let failed = |why: &str| format!("oracle failed ({why}): {stdout} {stderr}");
        if !stdout.contains("@@END") {
            return Err(failed("no dump"));
        }
        let mut sections: BTreeMap<&str, String> = BTreeMap::new();
        let mut current = "";
        let mut status = None;
        let mut output = String::new();
        for line in stdout.lines() {
            if let Some(rc) = line.strip_prefix("@@RC ") {
                status = rc.trim().parse::<i32>().ok();
            } else if let Some(name) = line.strip_prefix("@@") {
                current = match name {
                    "OUT" => "out",
                    "ADDR" => "addr",
                    "R4" => "r4",
                    "R6" => "r6",
                    _ => "",
                };
            } else if current == "out" {
                output.push_str(line);
                output.push('\n');
            } else if !current.is_empty() {
                sections.entry(current).or_default().push_str(line);
            }
        }
        let status = status.ok_or_else(|| failed("no status"))?;
        let json = |name: &str| -> Result<Json, String> {
            let text = sections.get(name).map(String::as_str).unwrap_or("");
            if text.trim().is_empty() {
                return Ok(Json::Arr(Vec::new()));
            }
            Json::parse(text).map_err(|e| failed(&format!("{name}: {e}")))
        };
        let state = State {
            links: kernel_links(&json("addr")?)?,
            routes4: kernel_routes(&json("r4")?, false)?,
            routes6: kernel_routes(&json("r6")?, true)?,
        };
        Ok(Outcome {
            status,
            message: stderr,
            output: keep_output.then_some(output),
            state,
        })
    }
}

// ---- the state, rendered ----

fn mac_string(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn link_string(index: u32, name: &str, up: bool, mtu: u64, mac: &str) -> String {
    let up = if up { "up" } else { "down" };
    format!("{index}:{name} {up} mtu {mtu} {mac}")
}

/// A route as compared.
struct RouteView<'a> {
    /// The table as iproute2 names it, if not main.
    table: Option<String>,
    /// `unicast`, or the type Linux shows (`unreachable`, ...).
    kind: &'a str,
    dst: IpAddr,
    len: u8,
    via: Option<String>,
    dev: &'a str,
    proto: String,
    metric: u64,
    src: Option<IpAddr>,
    /// A multipath route's nexthop: its weight.
    weight: Option<u64>,
}

impl RouteView<'_> {
    fn render(&self) -> String {
        let mut s = String::new();
        if let Some(table) = &self.table {
            write!(s, "table {table}: ").unwrap();
        }
        if self.kind != "unicast" {
            write!(s, "{} ", self.kind).unwrap();
        }
        write!(s, "{}/{}", self.dst, self.len).unwrap();
        if let Some(via) = &self.via {
            write!(s, " via {via}").unwrap();
        }
        write!(
            s,
            " dev {} proto {} metric {}",
            self.dev, self.proto, self.metric
        )
        .unwrap();
        if let Some(src) = self.src {
            write!(s, " src {src}").unwrap();
        }
        if let Some(weight) = self.weight {
            write!(s, " weight {weight}").unwrap();
        }
        s
    }
}

fn our_state(cfg: &NetConfig) -> State {
    let links = cfg
        .links()
        .iter()
        .map(|l| LinkState {
            link: link_string(l.index, &l.name, l.up, l.mtu.into(), &mac_string(&l.mac)),
            addrs: l
                .addrs
                .iter()
                .map(|a| {
                    let family = if a.addr.is_ipv4() { "inet" } else { "inet6" };
                    format!("{family} {}/{}", a.addr, a.prefix_len)
                })
                .collect(),
        })
        .collect();
    let name = |index: u32| {
        cfg.link_by_index(index)
            .map_or_else(|| format!("#{index}"), |l| l.name.clone())
    };
    let mut routes4 = Vec::new();
    let mut routes6 = Vec::new();
    for r in cfg.all_routes() {
        let proto = r.proto.name();
        let s = RouteView {
            table: match r.table {
                254 => None,
                253 => Some("default".to_string()),
                255 => Some("local".to_string()),
                n => Some(n.to_string()),
            },
            kind: r.kind.name(),
            dst: r.dst,
            len: r.prefix_len,
            via: r.via.map(|v| {
                if v.is_ipv4() == r.dst.is_ipv4() {
                    v.to_string()
                } else {
                    format!("inet6 {v}")
                }
            }),
            dev: &r.device().map_or_else(|| "-".to_string(), name),
            proto,
            metric: r.metric().into(),
            src: r.src,
            weight: cfg.is_multipath(&r).then_some(r.weight.into()),
        }
        .render();
        if r.dst.is_ipv4() {
            routes4.push(s);
        } else {
            routes6.push(s);
        }
    }
    State {
        links,
        routes4,
        routes6,
    }
}

fn kernel_links(json: &Json) -> Result<Vec<LinkState>, String> {
    let mut links = Vec::new();
    for l in json.arr()? {
        let index = l.num("ifindex")? as u32;
        let name = l.str("ifname")?;
        let up = l
            .get("flags")
            .map(|f| f.arr().map(|f| f.iter().any(|x| x.as_str() == Some("UP"))))
            .transpose()?
            .unwrap_or(false);
        let mtu = l.num("mtu")? as u64;
        let mac = l.get("address").and_then(Json::as_str).unwrap_or("");
        let mut addrs = Vec::new();
        if let Some(info) = l.get("addr_info") {
            for a in info.arr()? {
                let local: IpAddr = a
                    .str("local")?
                    .parse()
                    .map_err(|e| format!("address: {e}"))?;
                addrs.push(format!(
                    "{} {local}/{}",
                    a.str("family")?,
                    a.num("prefixlen")? as u64
                ));
            }
        }
        links.push(LinkState {
            link: link_string(index, name, up, mtu, mac),
            addrs,
        });
    }
    Ok(links)
}

fn kernel_routes(json: &Json, ipv6: bool) -> Result<Vec<String>, String> {
    let mut routes = Vec::new();
    for r in json.arr()? {
        let table = r.get("table").and_then(Json::as_str);
        let dst = r.str("dst")?;
        let (addr, len) = if dst == "default" {
            (if ipv6 { "::" } else { "0.0.0.0" }, 0)
        } else {
            match dst.split_once('/') {
                Some((a, l)) => (a, l.parse::<u8>().map_err(|e| format!("dst {dst}: {e}"))?),
                None => (dst, if ipv6 { 128 } else { 32 }),
            }
        };
        let addr: IpAddr = addr.parse().map_err(|e| format!("dst {dst}: {e}"))?;
        let src = match r.get("prefsrc").and_then(Json::as_str) {
            Some(s) => Some(s.parse().map_err(|e| format!("prefsrc {s}: {e}"))?),
            None => None,
        };
        // A multipath route is compared as its nexthops, one route each, as
        // the model keeps them.
        let hops = match r.get("nexthops") {
            Some(hops) => hops.arr()?.iter().collect(),
            None => vec![r],
        };
        for hop in hops {
            let via = match (hop.get("gateway"), hop.get("via")) {
                (Some(g), _) => Some(g.as_str().unwrap_or("?").to_string()),
                (None, Some(v)) => Some(format!(
                    "{} {}",
                    v.get("family").and_then(Json::as_str).unwrap_or("?"),
                    v.get("host").and_then(Json::as_str).unwrap_or("?")
                )),
                (None, None) => None,
            };
            routes.push(
                RouteView {
                    table: table.map(str::to_string),
                    kind: r.get("type").and_then(Json::as_str).unwrap_or("unicast"),
                    dst: addr,
                    len,
                    via,
                    dev: hop.get("dev").and_then(Json::as_str).unwrap_or("-"),
                    // iproute2 leaves out the protocol when it is "boot", the metric
                    // when it is 0.
                    proto: r
                        .get("protocol")
                        .and_then(Json::as_str)
                        .unwrap_or("boot")
                        .to_string(),
                    metric: r.get("metric").and_then(Json::as_num).unwrap_or(0.0) as u64,
                    src,
                    weight: hop.get("weight").and_then(Json::as_num).map(|w| w as u64),
                }
                .render(),
            );
        }
    }
    Ok(routes)
}

// ---- comparing ----

/// How two ordered lists differ, or `None`.
fn list_diff(what: &str, ours: &[String], kernel: &[String]) -> Option<String> {
    if ours == kernel {
        return None;
    }
    let only_ours: Vec<&String> = ours.iter().filter(|x| !kernel.contains(x)).collect();
    let only_kernel: Vec<&String> = kernel.iter().filter(|x| !ours.contains(x)).collect();
    if only_ours.is_empty() && only_kernel.is_empty() {
        return Some(format!(
            "{what} order: ours [{}], kernel [{}]",
            ours.join(", "),
            kernel.join(", ")
        ));
    }
    let mut s = format!("{what}:");
    if !only_ours.is_empty() {
        let items: Vec<&str> = only_ours.iter().map(|x| x.as_str()).collect();
        write!(s, " only ours [{}]", items.join(", ")).unwrap();
    }
    if !only_kernel.is_empty() {
        let items: Vec<&str> = only_kernel.iter().map(|x| x.as_str()).collect();
        write!(s, " only kernel [{}]", items.join(", ")).unwrap();
    }
    Some(s)
}

fn compare(ours: &Outcome, kernel: &Outcome) -> Vec<String> {
    let mut diffs = Vec::new();
    if ours.status != kernel.status {
        diffs.push(format!("status {} vs {}", ours.status, kernel.status));
    }
    let links = |s: &State| s.links.iter().map(|l| l.link.clone()).collect::<Vec<_>>();
    diffs.extend(list_diff(
        "links",
        &links(&ours.state),
        &links(&kernel.state),
    ));
    for l in &ours.state.links {
        let name = l.link.split(' ').next().unwrap_or("");
        let theirs = kernel
            .state
            .links
            .iter()
            .find(|k| k.link.split(' ').next() == Some(name));
        if let Some(k) = theirs {
            diffs.extend(list_diff(&format!("{name} addrs"), &l.addrs, &k.addrs));
        }
    }
    diffs.extend(list_diff(
        "IPv4 routes",
        &ours.state.routes4,
        &kernel.state.routes4,
    ));
    diffs.extend(list_diff(
        "IPv6 routes",
        &ours.state.routes6,
        &kernel.state.routes6,
    ));
    // A failed line's output stops at a different place on each side.
    if let (Some(o), Some(k), 0, 0) = (&ours.output, &kernel.output, ours.status, kernel.status) {
        if o != k {
            diffs.push(format!("output: ours {o:?}, kernel {k:?}"));
        }
    }
    diffs
}

fn summary(o: &Outcome) -> String {
    let message = o.message.lines().last().unwrap_or("");
    if o.status == 0 {
        "0".to_string()
    } else {
        format!("{} {message}", o.status)
    }
}

// ---- the corpus ----

fn corpus() -> Vec<(usize, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ip_corpus.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

fn run_ours(line: &str) -> Outcome {
    let mut cfg = NetConfig::new("vde0", MAC);
    let (status, message, output) = match cfg.run(line) {
        Ok(out) => (0, String::new(), out),
        Err(e) => (e.status(), e.message().to_string(), String::new()),
    };
    Outcome {
        status,
        message,
        output: asks_route_get(line).then_some(output),
        state: our_state(&cfg),
    }
}

/// What the oracle runs of a line: its commands up to the first one that is not
/// a full path of `ip`, and whether there is such a command (the reference's
/// `execv` fails on it, or our stack refuses it: status 2 if it is reached).
fn oracle_commands(line: &str) -> (Vec<Vec<String>>, bool) {
    let mut commands = Vec::new();
    for argv in split_commands(line) {
        if !IP_PATHS.contains(&argv[0].as_str()) {
            return (commands, true);
        }
        commands.push(argv);
    }
    (commands, false)
}

#[test]
fn ip_agrees_with_the_kernel() {
    let started = Instant::now();
    let lines = corpus();
    assert!(
        lines.len() >= 150,
        "the corpus has {} lines, fewer than 150",
        lines.len()
    );
    for (entry, _) in ALLOWED {
        assert!(
            lines.iter().any(|(_, l)| l == entry),
            "allow-list entry not in the corpus: {entry}"
        );
    }
    let oracle = match Oracle::find() {
        Ok(o) => o,
        Err(why) => {
            // The model still has to run every line without panicking.
            for (_, line) in &lines {
                run_ours(line);
            }
            println!("SKIPPED ip_agrees_with_the_kernel: {why}; the kernel oracle is not run");
            return;
        }
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<Outcome, String>)>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8)
        * 2;
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((_, line)) = lines.get(i) else { break };
                let (commands, exec_fails) = oracle_commands(line);
                let outcome = oracle.run(&commands, exec_fails, asks_route_get(line));
                results.lock().unwrap().push((i, outcome));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);

    let mut disagreements = Vec::new();
    let mut agree = 0;
    for (i, kernel) in results {
        let (line_no, line) = &lines[i];
        let ours = run_ours(line);
        let (kernel_summary, what) = match &kernel {
            Ok(k) => (summary(k), compare(&ours, k)),
            Err(e) => ("?".to_string(), vec![e.clone()]),
        };
        if what.is_empty() {
            agree += 1;
            continue;
        }
        disagreements.push(Disagreement {
            line_no: *line_no,
            line: line.clone(),
            ours: summary(&ours),
            kernel: kernel_summary,
            what: what.join("; "),
        });
    }

    let allowed = |d: &Disagreement| ALLOWED.iter().find(|(l, _)| *l == d.line);
    let mut failures = 0;
    if !disagreements.is_empty() {
        println!("\nDisagreements with the kernel (line: command / ours / kernel / what differs):");
        for d in &disagreements {
            let tag = match allowed(d) {
                Some((_, why)) => format!("ALLOWED ({why})"),
                None => {
                    failures += 1;
                    "WRONG".to_string()
                }
            };
            println!(
                "\n{:>4}  {tag}\n      cmd:    {}\n      ours:   {}\n      kernel: {}\n      diff:   {}",
                d.line_no, d.line, d.ours, d.kernel, d.what
            );
        }
    }
    for (entry, _) in ALLOWED {
        if !disagreements.iter().any(|d| d.line == *entry) {
            println!("\nnote: allowed line now agrees, remove it from ALLOWED: {entry}");
        }
    }
    println!(
        "\n{} lines: {agree} agree, {} disagree ({} allowed, {failures} not) in {:.1} s",
        lines.len(),
        disagreements.len(),
        disagreements.len() - failures,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        failures, 0,
        "{failures} corpus lines disagree with the kernel (see the table above)"
    );
}

// ---- a small JSON reader, enough for `ip -j` ----

#[derive(Debug, Clone)]
enum Json {
    /// `null`, `true` or `false`: `ip -j` uses them for flags we do not compare.
    Literal,
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            s: text.as_bytes(),
            at: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.at != p.s.len() {
            return Err(format!("trailing text at {}", p.at));
        }
        Ok(v)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_num(&self) -> Option<f64> {
        match self {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }

    fn arr(&self) -> Result<&[Json], String> {
        match self {
            Json::Arr(a) => Ok(a),
            other => Err(format!("expected an array, got {other:?}")),
        }
    }

    fn str(&self, key: &str) -> Result<&str, String> {
        self.get(key)
            .and_then(Json::as_str)
            .ok_or_else(|| format!("no string \"{key}\" in {self:?}"))
    }

    fn num(&self, key: &str) -> Result<f64, String> {
        self.get(key)
            .and_then(Json::as_num)
            .ok_or_else(|| format!("no number \"{key}\" in {self:?}"))
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    at: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.at).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at {}", c as char, self.at))
        }
    }

    fn literal(&mut self, word: &str) -> Result<Json, String> {
        if self.s[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(Json::Literal)
        } else {
            Err(format!("bad literal at {}", self.at))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.peek().ok_or("unexpected end")? {
            b'{' => {
                self.at += 1;
                let mut fields = Vec::new();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(Json::Obj(fields));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.expect(b':')?;
                    fields.push((key, self.value()?));
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(Json::Obj(fields));
                        }
                        _ => return Err(format!("bad object at {}", self.at)),
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(format!("bad array at {}", self.at)),
                    }
                }
            }
            b'"' => Ok(Json::Str(self.string()?)),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => {
                let start = self.at;
                while self.at < self.s.len()
                    && matches!(
                        self.s[self.at],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.at += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
                text.parse()
                    .map(Json::Num)
                    .map_err(|_| format!("bad number at {start}"))
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if self.s.get(self.at) != Some(&b'"') {
            return Err(format!("expected a string at {}", self.at));
        }
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.at).ok_or("unterminated string")?;
            self.at += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.s.get(self.at).ok_or("unterminated escape")?;
                    self.at += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = self.s.get(self.at..self.at + 4).ok_or("bad \\u escape")?;
                            self.at += 4;
                            let code =
                                u32::from_str_radix(std::str::from_utf8(hex).unwrap_or(""), 16)
                                    .map_err(|_| "bad \\u escape")?;
                            let ch = char::from_u32(code).unwrap_or('\u{fffd}');
                            let mut buf = [0; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                _ => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|e| e.to_string())
    }
}
