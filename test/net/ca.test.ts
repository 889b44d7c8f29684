/**
 * ca.ts: the certificates it writes must be accepted by every TLS stack a
 * sandboxed command might use, not just by Node. So each certificate is
 * checked by Node's X509Certificate, by a real Node TLS handshake, by
 * `openssl verify -x509_strict`, by Python's ssl module with OpenSSL's strict
 * X.509 checks on (the default from Python 3.13, which rejects certificates
 * missing key identifiers or critical basicConstraints), and by curl. Each
 * acceptance is paired with a rejection (wrong CA, wrong name) so a client
 * that accepted anything could not make the test pass.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import tls from 'node:tls';
import { createRunCa } from '../../src/net/ca.js';

const OPENSSL = '/usr/bin/openssl';
const PYTHON = '/usr/bin/python3';
const CURL = '/usr/bin/curl';
const HOUR = 60 * 60 * 1000;

const dir = mkdtempSync(path.join(os.tmpdir(), 'ward-ca-'));
const closers: Array<() => void> = [];
after(() => {
  for (const c of closers) c();
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

// Made outside the tests so the validity window can be bracketed by the clock.
const before = Date.now();
const ca = createRunCa();
const afterCreate = Date.now();
const otherCa = createRunCa();
const caFile = file('ca.pem', ca.certPem);
const otherCaFile = file('other-ca.pem', otherCa.certPem);

/**
 * Asynchronous on purpose: the TLS servers live in this process, so a
 * synchronous child would block the event loop and the handshake with it.
 * Resolves with the exit code instead of rejecting, so failures can be asserted on.
 */
function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** A TLS server on 127.0.0.1 presenting the leaf for `host`; it greets and closes. */
async function tlsServer(host: string): Promise<number> {
  const { certPem, keyPem } = ca.leaf(host);
  const server = tls.createServer({ key: keyPem, cert: certPem }, (s) => s.end(`hello from ${host}\n`));
  // Clients that refuse the certificate abort the handshake; that is expected here.
  server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => server.close());
  return (server.address() as AddressInfo).port;
}

type Outcome = { ok: true; authorized: boolean } | { ok: false; code: string; message: string };

function connect(opts: tls.ConnectionOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', ...opts }, () => {
      resolve({ ok: true, authorized: s.authorized });
      s.destroy();
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, code: String(e.code), message: e.message }));
  });
}

/** The key identifier as OpenSSL prints it for extension `name` ("Subject Key Identifier" etc.). */
function printedKeyId(pemFile: string, name: string): string {
  const text = execFileSync(OPENSSL, ['x509', '-noout', '-text', '-in', pemFile], { encoding: 'utf8' });
  const m = new RegExp(`X509v3 ${name}: *\\n\\s*(?:keyid:)?([0-9A-F:]+)`).exec(text);
  assert.ok(m, `no ${name} in:\n${text}`);
  return m[1]!.replaceAll(':', '').toLowerCase();
}

/** SHA-1 of the EC point (the last 65 bytes of a P-256 SubjectPublicKeyInfo), computed independently of ca.ts. */
function sha1OfPoint(cert: X509Certificate): string {
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha1').update(spki.subarray(spki.length - 65)).digest('hex');
}

describe('createRunCa: the certificates as X509Certificate sees them', () => {
  it('makes a self-signed CA with the specified subject, serial and validity', () => {
    const c = new X509Certificate(ca.certPem);
    assert.equal(c.ca, true);
    assert.match(c.subject, /^CN=Ward run CA [0-9a-f]{8}$/);
    assert.equal(c.issuer, c.subject);
    assert.ok(c.checkIssued(c));
    assert.ok(c.verify(c.publicKey));
    assert.equal(c.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    // 16 bytes, positive: the first hex digit is below 8.
    assert.match(c.serialNumber, /^[0-7][0-9A-F]{31}$/i);
    // Certificate times are whole seconds, so allow one second of truncation.
    const from = new Date(c.validFrom).getTime();
    const to = new Date(c.validTo).getTime();
    assert.ok(from >= before - HOUR - 1000 && from <= afterCreate - HOUR, `validFrom ${c.validFrom}`);
    assert.ok(to >= before + 24 * HOUR - 1000 && to <= afterCreate + 24 * HOUR, `validTo ${c.validTo}`);
    assert.notEqual(c.subject, new X509Certificate(otherCa.certPem).subject);
  });

  it('issues a DNS leaf that the CA signed, for that name only', () => {
    const c = new X509Certificate(ca.certPem);
    const leaf = new X509Certificate(ca.leaf('api.test').certPem);
    assert.ok(leaf.checkIssued(c));
    assert.ok(leaf.verify(c.publicKey));
    assert.equal(leaf.verify(new X509Certificate(otherCa.certPem).publicKey), false);
    assert.equal(leaf.ca, false);
    assert.equal(leaf.subject, 'CN=api.test');
    assert.equal(leaf.issuer, c.subject);
    assert.equal(leaf.subjectAltName, 'DNS:api.test');
    assert.equal(leaf.checkHost('api.test'), 'api.test');
    assert.equal(leaf.checkHost('other.test'), undefined);
    assert.equal(leaf.checkIP('127.0.0.1'), undefined);
    assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1']); // Node reports extendedKeyUsage here
    assert.match(leaf.serialNumber, /^[0-7][0-9A-F]{31}$/i);
    assert.notEqual(leaf.serialNumber, c.serialNumber);
    // The leaf's window lies within the CA's.
    assert.ok(new Date(leaf.validFrom) >= new Date(c.validFrom));
    assert.ok(new Date(leaf.validTo) <= new Date(c.validTo));
    // The key handed out is the one in the certificate.
    assert.ok(leaf.checkPrivateKey(createPrivateKey(ca.leaf('api.test').keyPem)));
  });

  it('issues an IPv4 leaf with an iPAddress name', () => {
    const leaf = new X509Certificate(ca.leaf('127.0.0.1').certPem);
    assert.ok(leaf.checkIssued(new X509Certificate(ca.certPem)));
    assert.equal(leaf.subjectAltName, 'IP Address:127.0.0.1');
    assert.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(leaf.checkIP('127.0.0.2'), undefined);
  });

  it('honours validityHours, switching to GeneralizedTime from 2050', () => {
    const t0 = Date.now();
    const short = new X509Certificate(createRunCa({ validityHours: 2 }).certPem);
    const to = new Date(short.validTo).getTime();
    assert.ok(to >= t0 + 2 * HOUR - 1000 && to <= Date.now() + 2 * HOUR, short.validTo);

    const hours = 40 * 366 * 24; // ends well after 2049
    const longCa = createRunCa({ validityHours: hours });
    const longCert = new X509Certificate(longCa.certPem);
    const expectedYear = new Date(t0 + hours * HOUR).getUTCFullYear();
    assert.ok(expectedYear >= 2050);
    assert.equal(new Date(longCert.validTo).getUTCFullYear(), expectedYear);
    const asn1 = execFileSync(OPENSSL, ['asn1parse'], { input: longCa.certPem, encoding: 'utf8' });
    assert.match(asn1, /UTCTIME\s+:\d{12}Z/); // notBefore (now - 1h) is before 2050
    assert.match(asn1, new RegExp(`GENERALIZEDTIME\\s+:${expectedYear}\\d{10}Z`));
    const leafFile = file('long-leaf.pem', longCa.leaf('api.test').certPem);
    const out = execFileSync(OPENSSL, ['verify', '-x509_strict', '-CAfile', file('long-ca.pem', longCa.certPem), leafFile], {
      encoding: 'utf8',
    });
    assert.match(out, /: OK$/m);
  });

  it('refuses a validity that is not a positive number of hours', () => {
    for (const validityHours of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => createRunCa({ validityHours }), /validityHours/);
    }
  });
});

describe('createRunCa: leaf cache and host names', () => {
  it('caches a leaf per host and gives distinct hosts distinct keys', () => {
    const a1 = ca.leaf('cache.test');
    const a2 = ca.leaf('cache.test');
    assert.equal(a1.certPem, a2.certPem);
    assert.equal(a1.keyPem, a2.keyPem);
    // The same host spelled with capitals and a trailing dot is the same certificate.
    assert.equal(ca.leaf('CACHE.Test.').certPem, a1.certPem);
    const b = ca.leaf('other-cache.test');
    assert.notEqual(b.keyPem, a1.keyPem);
    const pub = (pem: string): string =>
      new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }).toString('hex');
    assert.notEqual(pub(b.certPem), pub(a1.certPem));
    // Each CA has its own leaves: the cache is not shared between runs.
    assert.notEqual(otherCa.leaf('cache.test').keyPem, a1.keyPem);
  });

  it('throws a clear error for hosts that are not a DNS name or IPv4 literal', () => {
    const bad = [
      '',
      'a b',
      '*.x.com',
      'exa mple',
      'a..b',
      '-a.test',
      'a-.test',
      'under_score.test',
      `${'a'.repeat(64)}.test`,
      `${'a.'.repeat(127)}test`, // 257 characters
      '::1',
      '256.1.1.1',
      '01.2.3.4',
      '1.2.3.4.5',
      '127.1', // clients read an all-numeric name as an (abbreviated) IPv4 address
      'exämple.test',
      '.',
    ];
    for (const host of bad) {
      assert.throws(() => ca.leaf(host), /ward CA: cannot issue a certificate for/, `accepted ${JSON.stringify(host)}`);
    }
    assert.throws(() => ca.leaf('*.x.com'), /wildcard/);
  });

  it('accepts edge-of-range names; a host too long for a CN goes in subjectAltName only', () => {
    for (const host of ['localhost', 'a.b', 'x1-y2.example', '0.0.0.0', '255.255.255.255', 'xn--nxasmq6b.test']) {
      const leaf = new X509Certificate(ca.leaf(host).certPem);
      assert.ok(leaf.checkHost(host) === host || leaf.checkIP(host) === host, host);
    }
    // 63-character labels, 200 characters in all: valid DNS, but over the 64-character CN limit.
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.test`.slice(0, 200);
    const leaf = new X509Certificate(ca.leaf(long).certPem);
    assert.equal(leaf.subject, undefined); // Node's rendering of an empty Name
    assert.equal(leaf.checkHost(long), long);
    const leafFile = file('long-name.pem', ca.leaf(long).certPem);
    const text = execFileSync(OPENSSL, ['x509', '-noout', '-ext', 'subjectAltName', '-in', leafFile], { encoding: 'utf8' });
    assert.match(text, /Subject Alternative Name: critical/); // required with an empty subject
    const out = execFileSync(OPENSSL, ['verify', '-x509_strict', '-CAfile', caFile, leafFile], { encoding: 'utf8' });
    assert.match(out, /: OK$/m);
  });
});

describe('createRunCa: OpenSSL', () => {
  it('openssl verify (strict) accepts the leaves and rejects them against another CA', () => {
    for (const host of ['api.test', '127.0.0.1']) {
      const leafFile = file(`leaf-${host}.pem`, ca.leaf(host).certPem);
      const out = execFileSync(OPENSSL, ['verify', '-x509_strict', '-CAfile', caFile, leafFile], { encoding: 'utf8' });
      assert.equal(out.trim(), `${leafFile}: OK`);
      assert.throws(
        () => execFileSync(OPENSSL, ['verify', '-CAfile', otherCaFile, leafFile], { stdio: 'pipe' }),
        (e: { stdout?: Buffer; stderr?: Buffer }) =>
          /unable to get local issuer certificate/.test(`${String(e.stdout)}${String(e.stderr)}`),
      );
    }
  });

  it('openssl reads the extensions as intended', () => {
    const caText = execFileSync(OPENSSL, ['x509', '-noout', '-text', '-in', caFile], { encoding: 'utf8' });
    assert.match(caText, /Version: 3 \(0x2\)/);
    assert.match(caText, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(caText, /Basic Constraints: critical\n\s+CA:TRUE, pathlen:0\n/);
    assert.match(caText, /Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
    assert.match(caText, /NIST CURVE: P-256/);

    const leafFile = file('leaf-text.pem', ca.leaf('api.test').certPem);
    const text = execFileSync(OPENSSL, ['x509', '-noout', '-text', '-in', leafFile], { encoding: 'utf8' });
    assert.match(text, /Version: 3 \(0x2\)/);
    assert.match(text, /Subject Alternative Name: \n\s+DNS:api.test\n/);
    assert.match(text, /Basic Constraints: critical\n\s+CA:FALSE\n/);
    assert.match(text, /Key Usage: critical\n\s+Digital Signature\n/);
    assert.match(text, /Extended Key Usage: \n\s+TLS Web Server Authentication\n/);

    // OpenSSL tolerates some non-DER encodings, so pin the exact bytes where DER has a rule:
    // keyUsage drops trailing zero bits (07 unused, 80 = digitalSignature; 01 unused, 06 =
    // keyCertSign|cRLSign) and CA:FALSE, being the DEFAULT, is an empty SEQUENCE.
    const extValue = (pem: string, ext: string): string => {
      const asn1 = execFileSync(OPENSSL, ['asn1parse'], { input: pem, encoding: 'utf8' });
      const m = new RegExp(`:X509v3 ${ext}\\n(?:.*BOOLEAN\\s*:255\\n)?.*OCTET STRING\\s*\\[HEX DUMP\\]:([0-9A-F]+)`).exec(asn1);
      assert.ok(m, `no ${ext} in:\n${asn1}`);
      return m[1]!;
    };
    assert.equal(extValue(ca.leaf('api.test').certPem, 'Key Usage'), '03020780');
    assert.equal(extValue(ca.certPem, 'Key Usage'), '03020106');
    assert.equal(extValue(ca.leaf('api.test').certPem, 'Basic Constraints'), '3000');
    assert.equal(extValue(ca.certPem, 'Basic Constraints'), '30060101FF020100');

    // Key identifiers: SHA-1 of each public key, and the leaf's AKI names the CA's key.
    const caSki = printedKeyId(caFile, 'Subject Key Identifier');
    assert.equal(caSki, sha1OfPoint(new X509Certificate(ca.certPem)));
    assert.equal(printedKeyId(caFile, 'Authority Key Identifier'), caSki);
    assert.equal(printedKeyId(leafFile, 'Subject Key Identifier'), sha1OfPoint(new X509Certificate(ca.leaf('api.test').certPem)));
    assert.equal(printedKeyId(leafFile, 'Authority Key Identifier'), caSki);
  });
});

describe('createRunCa: real TLS clients', () => {
  it('Node TLS: trusted for its name, refused by another CA and for another name', async () => {
    const port = await tlsServer('api.test');
    assert.deepEqual(await connect({ port, servername: 'api.test', ca: [ca.certPem] }), { ok: true, authorized: true });

    const wrongCa = await connect({ port, servername: 'api.test', ca: [otherCa.certPem] });
    assert.equal(wrongCa.ok, false);
    assert.match(!wrongCa.ok ? wrongCa.code : '', /^UNABLE_TO_(VERIFY_LEAF_SIGNATURE|GET_ISSUER_CERT_LOCALLY)$/);

    const wrongName = await connect({ port, servername: 'other.test', ca: [ca.certPem] });
    assert.equal(wrongName.ok, false);
    assert.equal(!wrongName.ok ? wrongName.code : '', 'ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('Node TLS: an IPv4 leaf is trusted when connecting by address', async () => {
    const port = await tlsServer('127.0.0.1');
    // No servername: Node checks the certificate against the IP address it dialled.
    assert.deepEqual(await connect({ port, ca: [ca.certPem] }), { ok: true, authorized: true });
    const wrong = await connect({ port, ca: [otherCa.certPem] });
    assert.equal(wrong.ok, false);
  });

  it('Python ssl (OpenSSL strict X.509 checks) accepts it, and refuses another CA and another name', async () => {
    const port = await tlsServer('api.test');
    // VERIFY_X509_STRICT is set explicitly because this Python may predate 3.13, where it became the default.
    const script = [
      'import socket, ssl, sys',
      'port, cafile, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]',
      'ctx = ssl.create_default_context(cafile=cafile)',
      'ctx.verify_flags |= ssl.VERIFY_X509_STRICT',
      'try:',
      '    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:',
      '        with ctx.wrap_socket(raw, server_hostname=name) as s:',
      '            print("OK", s.version(), s.recv(100).decode().strip())',
      'except ssl.SSLCertVerificationError as e:',
      '    print("VERIFY-FAILED", e.verify_message)',
    ].join('\n');
    const py = (cafile: string, name: string) => run(PYTHON, ['-c', script, String(port), cafile, name]);

    const good = await py(caFile, 'api.test');
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /^OK TLSv1\.[23] hello from api\.test$/m);

    const wrongCa = await py(otherCaFile, 'api.test');
    assert.match(wrongCa.stdout, /^VERIFY-FAILED unable to get local issuer certificate$/m, wrongCa.stderr);

    const wrongName = await py(caFile, 'other.test');
    assert.match(wrongName.stdout, /^VERIFY-FAILED Hostname mismatch/m, wrongName.stderr);
  });

  it('curl accepts an https server with the leaf, and refuses it with another CA', async () => {
    const { certPem, keyPem } = ca.leaf('api.test');
    const server = https.createServer({ key: keyPem, cert: certPem }, (_req, res) => res.end('hello over https\n'));
    server.on('tlsClientError', () => {});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => server.close());
    const port = (server.address() as AddressInfo).port;
    // --noproxy so an https_proxy in the environment cannot stand in for the server.
    const curl = (cacert: string) =>
      run(CURL, ['-sS', '--noproxy', '*', '--max-time', '10', '--cacert', cacert, '--resolve', `api.test:${port}:127.0.0.1`, `https://api.test:${port}/`]);

    const good = await curl(caFile);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(good.stdout, 'hello over https\n');

    const bad = await curl(otherCaFile);
    assert.equal(bad.code, 60, bad.stderr); // CURLE_PEER_FAILED_VERIFICATION
  });
});
