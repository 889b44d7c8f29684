/**
 * Network: no egress. The sandbox has its own network namespace with only a
 * loopback interface, so the internet, the host's loopback services and its
 * abstract unix sockets are unreachable; socket families that bypass the
 * network namespace (AF_VSOCK) or are pure attack surface (AF_PACKET) are
 * refused by seccomp, raw sockets by the missing CAP_NET_RAW. Host-side
 * servers count connections: any is a breach, whatever the probe printed.
 */
import { linkSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { broken, E, error, expectErrno, held, hostAddresses, kv, noResult, py, serverPort, startHostServer, st, type HostServer } from '../lib.js';
import type { Probe, ProbeContext, ProbeRun, Verdict } from '../types.js';

const group = 'network' as const;

const UNREACHABLE = [E.ENETUNREACH, E.EHOSTUNREACH];

/** Python: connect with a short timeout and print `key=errno` (110 ETIMEDOUT on timeout). */
const CONNECT = `def connect(key, family, addr, kind=socket.SOCK_STREAM):
    s = socket.socket(family, kind)
    s.settimeout(3)
    try:
        s.connect(addr)
        if kind == socket.SOCK_STREAM:
            s.sendall(b'ward-probe\\n')
        say(key, 0)
    except socket.timeout:
        say(key, errno.ETIMEDOUT)
    except OSError as e:
        say(key, e.errno)
    finally:
        s.close()
`;

/**
 * For the unix-socket probes (state: `servers`, `socks`; output `unixN` per socket): a breach if a
 * host-side server accepted anything, else each connect must have met EACCES.
 */
function unixServersUntouched(run: ProbeRun, ctx: ProbeContext, which: string, by: string): Verdict {
  const hits = st<HostServer[]>(ctx, 'servers').reduce((n, s) => n + s.hits, 0);
  if (hits > 0) return broken(`a host-side server ${which} accepted ${hits} connection(s) from the sandbox`);
  const keys = st<string[]>(ctx, 'socks').map((_, i) => `unix${i}`);
  const r = expectErrno({ keys, refused: [E.EACCES], by })(run);
  return r.status === 'held' ? held(`${r.detail}; the host-side servers saw no connection`) : r;
}

/** Breach if a host-side server accepted anything; otherwise the errnos decide. */
function serverUntouched(key: string, refused: number[], by: string): (run: ProbeRun, ctx: ProbeContext) => Verdict {
  return (run, ctx) => {
    const s = st<HostServer>(ctx, 'server');
    if (s.hits > 0) return broken(`the host-side server accepted ${s.hits} connection(s) from the sandbox`);
    const v = expectErrno({ keys: [key], refused, by })(run);
    return v.status === 'held' ? held(`${v.detail}; the host-side server saw no connection`) : v;
  };
}

function hostNameservers(): string[] {
  try {
    const ns = readFileSync('/etc/resolv.conf', 'utf8')
      .split('\n')
      .map((l) => /^\s*nameserver\s+([0-9.]+)\s*$/.exec(l)?.[1])
      .filter((x): x is string => x !== undefined);
    return ns.length > 0 ? ns.slice(0, 3) : ['8.8.8.8'];
  } catch {
    return ['8.8.8.8'];
  }
}


export const probes: Probe[] = [
  {
    id: 'net.tcp-internet',
    group,
    promise: 'egress',
    title: 'open TCP connections to the internet (1.1.1.1:443, 8.8.8.8:53, IPv6 2606:4700:4700::1111:443)',
    mechanism: 'net-namespace',
    asi: ['ASI02', 'ASI01'],
    nist: ['SC-7', 'AC-4'],
    expect: 'refused',
    program: py(`${CONNECT}
connect('v4_443', socket.AF_INET, ('1.1.1.1', 443))
connect('v4_53', socket.AF_INET, ('8.8.8.8', 53))
connect('v6_443', socket.AF_INET6, ('2606:4700:4700::1111', 443))`),
    check: expectErrno({ keys: ['v4_443', 'v4_53', 'v6_443'], refused: UNREACHABLE, by: 'the network namespace (no route: only lo exists)' }),
  },
  {
    id: 'net.udp-internet',
    group,
    promise: 'egress',
    title: 'send UDP datagrams to the internet (DNS and NTP servers)',
    mechanism: 'net-namespace',
    asi: ['ASI02', 'ASI01'],
    nist: ['SC-7', 'AC-4'],
    expect: 'refused',
    program: py(`for key, addr in (('udp_dns', ('8.8.8.8', 53)), ('udp_ntp', ('162.159.200.1', 123))):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attempt(key, lambda: s.sendto(b'ward-probe', addr))
    s.close()`),
    check: expectErrno({ keys: ['udp_dns', 'udp_ntp'], refused: UNREACHABLE, by: 'the network namespace' }),
  },
  {
    id: 'net.dns-lookup',
    group,
    promise: 'egress',
    title: "resolve a name (exfiltration through DNS), and query the host's nameservers directly",
    mechanism: 'net-namespace',
    asi: ['ASI02', 'ASI01'],
    nist: ['SC-7', 'AC-4'],
    expect: 'refused',
    setup: (ctx) => {
      ctx.state.nameservers = hostNameservers();
    },
    program: (ctx) =>
      py(`try:
    socket.getaddrinfo('ward-probe-exfil.example.com', 443)
    say('getaddrinfo', 0)
except socket.gaierror as e:
    say('getaddrinfo', 'gai%d' % e.errno)
query = struct.pack('>HHHHHH', 0x1234, 0x0100, 1, 0, 0, 0) + b'\\x07example\\x03com\\x00' + struct.pack('>HH', 1, 1)
for i, ns in enumerate(${JSON.stringify(st<string[]>(ctx, 'nameservers'))}):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.5)
    try:
        s.sendto(query, (ns, 53))
        s.recv(512)
        say('ns%d' % i, 0)
    except socket.timeout:
        say('ns%d' % i, errno.ETIMEDOUT)
    except OSError as e:
        say('ns%d' % i, e.errno)`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      const gai = v.get('getaddrinfo');
      if (gai === undefined) return noResult(run, 'getaddrinfo');
      if (gai === '0') return broken('a name resolved inside the sandbox');
      const keys = st<string[]>(ctx, 'nameservers').map((_, i) => `ns${i}`);
      const direct = expectErrno({ keys, refused: [...UNREACHABLE, E.ECONNREFUSED, E.ETIMEDOUT], by: 'the network namespace' })(run);
      return direct.status === 'held' ? held(`getaddrinfo failed (${gai}); ${direct.detail}`) : direct;
    },
  },
  {
    id: 'net.host-loopback',
    group,
    promise: 'egress',
    title: "connect to a service on the host's loopback (a dev server, a database) and on the host's own addresses",
    mechanism: 'net-namespace',
    asi: ['ASI02', 'ASI07'],
    nist: ['SC-7', 'AC-4'],
    expect: 'refused',
    setup: async (ctx) => {
      ctx.state.server = await startHostServer({ port: 0, host: '0.0.0.0' });
      ctx.state.addresses = hostAddresses();
    },
    teardown: (ctx) => st<HostServer>(ctx, 'server').close(),
    program: (ctx) => {
      const port = serverPort(st<HostServer>(ctx, 'server'));
      const addrs = st<string[]>(ctx, 'addresses');
      return py(`${CONNECT}
connect('loopback', socket.AF_INET, ('127.0.0.1', ${port}))
${addrs.map((a, i) => `connect('host${i}', socket.AF_INET, ('${a}', ${port}))`).join('\n')}`);
    },
    check: (run, ctx) => {
      const s = st<HostServer>(ctx, 'server');
      if (s.hits > 0) return broken(`the host-side server accepted ${s.hits} connection(s) from the sandbox`);
      const lo = expectErrno({ keys: ['loopback'], refused: [E.ECONNREFUSED], by: "the network namespace (the sandbox's lo is its own)" })(run);
      if (lo.status !== 'held') return lo;
      const keys = st<string[]>(ctx, 'addresses').map((_, i) => `host${i}`);
      const host = expectErrno({ keys, refused: UNREACHABLE, by: 'the network namespace' })(run);
      return host.status === 'held' ? held(`${lo.detail}; ${keys.length > 0 ? host.detail : 'no host address to try'}; the host-side server saw no connection`) : host;
    },
  },
  {
    id: 'net.abstract-unix-host',
    group,
    promise: 'egress',
    title: 'connect to an abstract unix socket the host listens on (how X11, D-Bus and some agents listen)',
    mechanism: 'net-namespace',
    asi: ['ASI02', 'ASI07'],
    nist: ['SC-7', 'AC-4'],
    expect: 'refused',
    setup: async (ctx) => {
      ctx.state.name = `ward-probe-${process.pid}-${Math.random().toString(36).slice(2)}`;
      ctx.state.server = await startHostServer({ path: `\0${st<string>(ctx, 'name')}` });
    },
    teardown: (ctx) => st<HostServer>(ctx, 'server').close(),
    program: (ctx) => py(`${CONNECT}\nconnect('abstract', socket.AF_UNIX, '\\0${st<string>(ctx, 'name')}')`),
    // Abstract names live in the network namespace; Landlock ABI 6 scoping refuses with EPERM as well.
    check: serverUntouched('abstract', [E.ECONNREFUSED, E.EPERM], 'the network namespace (abstract socket names are per namespace)'),
  },
  {
    id: 'net.unix-socket-host',
    group,
    promise: 'egress',
    title: 'connect to a unix socket the host listens on outside the workspace (like an SSH agent or docker.sock)',
    mechanism: 'mount-namespace',
    asi: ['ASI02', 'ASI03'],
    nist: ['SC-7', 'AC-4'],
    expect: 'refused',
    setup: async (ctx) => {
      ctx.state.sock = path.join(ctx.outside, 'agent.sock');
      ctx.state.server = await startHostServer({ path: st<string>(ctx, 'sock') });
    },
    teardown: (ctx) => st<HostServer>(ctx, 'server').close(),
    program: (ctx) => py(`${CONNECT}\nconnect('unix', socket.AF_UNIX, ${JSON.stringify(st<string>(ctx, 'sock'))})`),
    check: serverUntouched('unix', [E.ENOENT, E.EACCES], 'the mount namespace (the socket file is not there)'),
  },
  {
    id: 'net.unix-socket-granted-dir',
    group,
    promise: 'egress',
    title: 'connect to unix sockets the host listens on inside a directory the policy grants read-only (how /run, /tmp and $XDG_RUNTIME_DIR hold the session bus, systemd, docker.sock, ssh-agent)',
    mechanism: 'mount-namespace',
    asi: ['ASI02', 'ASI03'],
    nist: ['SC-7', 'AC-4', 'AC-6'],
    expect: 'refused',
    setup: async (ctx) => {
      // One socket at the top of the granted directory, one in a private subdirectory like an
      // agent's. A short path of its own: a unix socket's path holds 107 bytes.
      const dir = mkdtempSync(path.join(os.tmpdir(), 'wp-'));
      mkdirSync(path.join(dir, 'ssh-probe'), { mode: 0o700 });
      ctx.state.dir = dir;
      ctx.state.socks = [path.join(dir, 'bus'), path.join(dir, 'ssh-probe', 'agent.1')];
      ctx.state.servers = await Promise.all(st<string[]>(ctx, 'socks').map((p) => startHostServer({ path: p })));
    },
    teardown: (ctx) => {
      for (const s of st<HostServer[]>(ctx, 'servers') ?? []) s.close();
      rmSync(st<string>(ctx, 'dir'), { recursive: true, force: true });
    },
    policy: (ctx) => ({ filesystem: { read: [st<string>(ctx, 'dir')] } }),
    program: (ctx) => py(`${CONNECT}\n${st<string[]>(ctx, 'socks').map((p, i) => `say('node${i}', 0 if os.path.exists(${JSON.stringify(p)}) else 2)\nconnect('unix${i}', socket.AF_UNIX, ${JSON.stringify(p)})`).join('\n')}`),
    check: (run, ctx) => {
      if (kv(run.stdout).get('node0') !== '0' && st<HostServer[]>(ctx, 'servers').every((s) => s.hits === 0)) return noResult(run, 'the socket node visible through the grant (node0=0)');
      return unixServersUntouched(run, ctx, 'in the granted directory', "Ward's mask over each socket the grant would expose");
    },
  },
  {
    id: 'net.unix-socket-renamed',
    group,
    promise: 'egress',
    title: 'connect to host unix sockets in a granted directory outside /tmp and /run that are not at the name they were bound by (OpenSSH ControlMaster links a temporary name into place; a path over 107 bytes is bound by a relative name)',
    mechanism: 'mount-namespace',
    asi: ['ASI02', 'ASI03'],
    nist: ['SC-7', 'AC-4', 'AC-6'],
    expect: 'refused',
    setup: async (ctx) => {
      // In the caller's home: /tmp and /run are walked whole, so there the name would not matter.
      const dir = realpathSync(mkdtempSync(path.join(os.homedir(), '.ward-probe-sock-')));
      ctx.state.dir = dir;
      const socks = ['cm-link', 'cm-rename', 'rel.sock'].map((n) => path.join(dir, n));
      ctx.state.socks = socks;
      const servers: HostServer[] = [];
      ctx.state.servers = servers;
      servers.push(await startHostServer({ path: `${socks[0]}.Xy12ab` }));
      linkSync(`${socks[0]}.Xy12ab`, socks[0]!);
      unlinkSync(`${socks[0]}.Xy12ab`);
      servers.push(await startHostServer({ path: `${socks[1]}.tmp` }));
      renameSync(`${socks[1]}.tmp`, socks[1]!);
      // The bind happens within listen(), before it returns: the directory change covers it alone.
      const cwd = process.cwd();
      process.chdir(dir);
      try {
        servers.push(await startHostServer({ path: 'rel.sock' }));
      } finally {
        process.chdir(cwd);
      }
    },
    teardown: async (ctx) => {
      await Promise.all((st<HostServer[]>(ctx, 'servers') ?? []).map((s) => s.close()));
      rmSync(st<string>(ctx, 'dir'), { recursive: true, force: true });
    },
    policy: (ctx) => ({ filesystem: { read: [st<string>(ctx, 'dir')] } }),
    program: (ctx) => py(`${CONNECT}\n${st<string[]>(ctx, 'socks').map((p, i) => `connect('unix${i}', socket.AF_UNIX, ${JSON.stringify(p)})`).join('\n')}`),
    check: (run, ctx) => {
      return unixServersUntouched(run, ctx, 'whose socket was renamed, linked or bound by a relative name', "Ward's mask over each socket, found by its node (sock_diag) where its bound name no longer leads");
    },
  },
  {
    id: 'net.raw-socket',
    group,
    promise: 'egress',
    title: 'open raw IPv4 and IPv6 sockets (forged packets, ICMP tunnels)',
    mechanism: 'capabilities',
    asi: ['ASI02', 'ASI05'],
    nist: ['SC-7', 'AC-6'],
    expect: 'refused',
    program: py(`attempt('raw4', lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close())
attempt('raw6', lambda: socket.socket(socket.AF_INET6, socket.SOCK_RAW, 58).close())
attempt('raw_tcp', lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP).close())`),
    check: expectErrno({ keys: ['raw4', 'raw6', 'raw_tcp'], refused: [E.EPERM], by: 'missing CAP_NET_RAW' }),
  },
  {
    id: 'net.packet-socket',
    group,
    promise: 'egress',
    title: 'open AF_PACKET sockets (link-layer access; several kernel privilege escalations)',
    mechanism: 'seccomp',
    asi: ['ASI02', 'ASI05'],
    nist: ['SC-7', 'CM-7'],
    expect: 'refused',
    program: py(`attempt('packet_raw', lambda: socket.socket(17, socket.SOCK_RAW, 0x0300).close())
attempt('packet_dgram', lambda: socket.socket(17, socket.SOCK_DGRAM, 0x0300).close())`),
    check: expectErrno({ keys: ['packet_raw', 'packet_dgram'], refused: [E.EPERM], by: 'seccomp (socket family)' }),
  },
  {
    id: 'net.vsock',
    group,
    promise: 'egress',
    title: 'reach the hypervisor or host over AF_VSOCK, which no network namespace covers',
    mechanism: 'seccomp',
    asi: ['ASI02', 'ASI05'],
    nist: ['SC-7', 'AC-4'],
    expect: 'refused',
    program: py(`attempt('vsock_stream', lambda: socket.socket(40, socket.SOCK_STREAM).close())
attempt('vsock_dgram', lambda: socket.socket(40, socket.SOCK_DGRAM).close())`),
    check: expectErrno({ keys: ['vsock_stream', 'vsock_dgram'], refused: [E.EPERM], by: 'seccomp (socket family)' }),
  },
  {
    id: 'net.netlink-interfaces',
    group,
    promise: 'egress',
    title: 'enumerate network interfaces with a netlink route dump (allowed: it must show only lo)',
    mechanism: 'net-namespace',
    asi: ['ASI02'],
    nist: ['SC-7'],
    expect: 'refused',
    program: py(`s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.bind((0, 0))
RTM_GETLINK, NLM_F_REQUEST, NLM_F_DUMP = 18, 1, 0x300
s.send(struct.pack('=LHHLL', 32, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + struct.pack('=BxHiII', 0, 0, 0, 0, 0))
names, done = [], False
while not done:
    data = s.recv(65536)
    off = 0
    while off < len(data):
        ln, typ = struct.unpack_from('=LH', data, off)
        if typ in (2, 3) or ln < 16:
            done = True
            break
        a = off + 32
        while a + 4 <= off + ln:
            alen, atyp = struct.unpack_from('=HH', data, a)
            if alen < 4:
                break
            if atyp == 3:
                names.append(data[a + 4:a + alen].rstrip(b'\\0').decode())
            a += (alen + 3) & ~3
        off += (ln + 3) & ~3
say('links', ','.join(names))`),
    check: (run) => {
      const links = kv(run.stdout).get('links');
      if (links === undefined) return noResult(run, 'the netlink dump');
      if (links === '') return error('the netlink dump returned no interface at all (not even lo)');
      const extra = links.split(',').filter((n) => n !== 'lo');
      if (extra.length > 0) return broken(`interfaces beyond lo are visible: ${extra.join(', ')}`);
      return held('the route dump works and shows only lo (the network namespace is empty)');
    },
  },
];
