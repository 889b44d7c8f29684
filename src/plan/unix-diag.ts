/**
 * The pathname unix sockets of Ward's network namespace with the identity of each one's node,
 * from the kernel's sock_diag netlink interface (NETLINK_SOCK_DIAG, UNIX_DIAG_NAME and
 * UNIX_DIAG_VFS). /proc/net/unix gives only the name a socket was bound by, which is not where
 * its node is once the server renames or links it (OpenSSH's ControlMaster binds a temporary
 * name, links it to the ControlPath and unlinks the first), nor anywhere when the name was
 * relative (a path longer than 107 bytes forces that); the node's device and inode say which
 * file it is wherever it lies. Names come as bytes, so a newline in one is just a byte.
 *
 * Layouts are the kernel ABI (include/uapi/linux/netlink.h, sock_diag.h, unix_diag.h).
 */
import { loadNative, type Native } from '../supervisor/native.js';

const AF_NETLINK = 16;
const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const UDIAG_SHOW_NAME = 1;
const UDIAG_SHOW_VFS = 2;
const UNIX_DIAG_NAME = 0;
const UNIX_DIAG_VFS = 1;

export interface DiagSocket {
  /** The name it was bound by (may be relative, or stale). */
  name: string;
  /** Its node's identity, "dev:ino" as stat(2) gives them (ino: the low 32 bits, all the kernel reports). */
  node: string;
  /** The socket's own inode (what `ss -x` shows), to name the server in an error. */
  inode: number;
}

/** The kernel's dev_t (MAJOR << 20 | MINOR, as sock_diag reports it) in stat(2)'s encoding. */
export function userDev(kdev: number): bigint {
  const major = BigInt(kdev >>> 20);
  const minor = BigInt(kdev & 0xfffff);
  return (minor & 0xffn) | ((major & 0xfffn) << 8n) | ((minor & ~0xffn) << 12n) | ((major & ~0xfffn) << 32n);
}

/**
 * Every unix socket bound to a path (abstract and unnamed ones have no node), or a string saying
 * why the kernel could not be asked (no koffi, no sock_diag in this kernel or container).
 */
export function unixDiag(): DiagSocket[] | string {
  let c: Native;
  try {
    c = loadNative();
  } catch {
    return 'the koffi package could not be loaded';
  }
  const fd = c.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return `socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed: errno ${-fd}`;
  try {
    // struct nlmsghdr (16 bytes) + struct unix_diag_req (24): every state, names and nodes.
    const req = Buffer.alloc(40);
    req.writeUInt32LE(40, 0);
    req.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
    req.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
    req.writeUInt8(AF_UNIX, 16);
    req.writeUInt32LE(0xffffffff, 20);
    req.writeUInt32LE(UDIAG_SHOW_NAME | UDIAG_SHOW_VFS, 28);
    const sent = c.send(fd, req);
    if (sent !== req.length) return `sock_diag request failed: ${sent < 0 ? `errno ${-sent}` : 'short send'}`;
    const out = new Map<string, DiagSocket>();
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const n = c.recv(fd, buf);
      if (n < 0) return `sock_diag answer failed: errno ${-n}`;
      if (n === 0) return 'sock_diag answer ended before its end marker';
      for (let o = 0; o + 16 <= n; ) {
        const len = buf.readUInt32LE(o);
        const type = buf.readUInt16LE(o + 4);
        if (len < 16 || o + len > n) return 'sock_diag answer malformed';
        if (type === NLMSG_DONE) return [...out.values()];
        if (type === NLMSG_ERROR) return `sock_diag refused: errno ${-buf.readInt32LE(o + 16)}`;
        if (type === SOCK_DIAG_BY_FAMILY && len >= 32) {
          // struct unix_diag_msg: family, type, state, pad (u8 each), ino u32, cookie u32[2]; then attributes.
          const inode = buf.readUInt32LE(o + 20);
          let name: string | undefined;
          let node: string | undefined;
          for (let a = o + 32; a + 4 <= o + len; ) {
            const alen = buf.readUInt16LE(a);
            const atype = buf.readUInt16LE(a + 2);
            if (alen < 4 || a + alen > o + len) break;
            if (atype === UNIX_DIAG_NAME) {
              const raw = buf.subarray(a + 4, a + alen);
              // A pathname's sun_path ends at its NUL; an abstract name begins with one and has no node.
              const end = raw.indexOf(0);
              name = raw.subarray(0, end < 0 ? raw.length : end).toString('utf8');
            } else if (atype === UNIX_DIAG_VFS && alen >= 12) {
              node = `${userDev(buf.readUInt32LE(a + 8))}:${buf.readUInt32LE(a + 4)}`;
            }
            a += (alen + 3) & ~3;
          }
          // Accepted connections carry their listener's name and node: one entry per node.
          if (name && node) out.set(`${node}\0${name}`, { name, node, inode });
        }
        o += (len + 3) & ~3;
      }
    }
  } finally {
    c.close(fd);
  }
}
