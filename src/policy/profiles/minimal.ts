import type { PolicyFile } from '../schema.js';

/**
 * The system a program needs to start and nothing more: the OS's programs and
 * libraries (read + execute), the few files under /etc that libc, TLS and
 * locale lookups read, and no home, no network, no workspace. Optional entries
 * are skipped on distributions that do not have them.
 */
const opt = (path: string) => ({ path, optional: true });

export const minimal: PolicyFile = {
  version: 1,
  filesystem: {
    execute: ['/usr', opt('/bin'), opt('/sbin'), opt('/lib'), opt('/lib64'), opt('/lib32'), opt('/libx32')],
    read: [
      opt('/etc/ld.so.cache'),
      opt('/etc/ld.so.conf'),
      opt('/etc/ld.so.conf.d'),
      opt('/etc/alternatives'),
      opt('/etc/ssl/certs'),
      opt('/etc/ca-certificates'),
      // RHEL-family trust stores: the certificates only, never /etc/pki whole (its tls/private and
      // CA/private hold the host's keys, and nssdb may).
      opt('/etc/pki/tls/certs'),
      opt('/etc/pki/tls/cert.pem'),
      opt('/etc/pki/tls/openssl.cnf'),
      opt('/etc/pki/ca-trust'),
      opt('/etc/pki/java'),
      opt('/etc/crypto-policies'),
      opt('/etc/passwd'),
      opt('/etc/group'),
      opt('/etc/nsswitch.conf'),
      opt('/etc/host.conf'),
      opt('/etc/hosts'),
      opt('/etc/localtime'),
      opt('/etc/timezone'),
      opt('/etc/os-release'),
      opt('/etc/debian_version'),
      opt('/etc/lsb-release'),
      opt('/etc/locale.alias'),
      opt('/etc/locale.conf'),
      opt('/etc/default/locale'),
      opt('/etc/mime.types'),
      opt('/etc/magic'),
      opt('/etc/inputrc'),
      opt('/etc/profile'),
      opt('/etc/bash.bashrc'),
      opt('/etc/environment'),
      opt('/etc/gitconfig'),
      opt('/etc/gai.conf'),
      opt('/etc/protocols'),
      opt('/etc/services'),
      opt('/etc/terminfo'),
      opt('/etc/python3'),
      opt('/etc/python3.11'),
      opt('/etc/perl'),
      opt('/etc/java-17-openjdk'),
      opt('/etc/gcc'),
    ],
  },
  network: { allow: [] },
  env: { pass: ['PATH', 'HOME', 'LANG', 'TERM'] },
  sandbox: { landlock: 'required', allow_degraded: false, home: 'tmpfs' },
};
