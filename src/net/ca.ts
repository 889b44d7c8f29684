/**
 * A certificate authority made fresh for each run, so the egress broker can
 * terminate TLS for the few hosts where it adds a credential to requests on
 * the way out. The CA certificate is trusted only inside that run's sandbox,
 * and its private key never leaves this process (it is not part of the API),
 * so nothing outside the run can mint certificates the sandbox would accept,
 * and the authority dies with the run.
 *
 * Node can parse X.509 (crypto.X509Certificate) but not create it, so the
 * certificates are assembled here with a minimal DER encoder (X.690) that
 * knows only the handful of ASN.1 types RFC 5280 needs; keys and signatures
 * come from node:crypto.
 *
 * The certificates are shaped to pass OpenSSL 3's strict checks
 * (X509_V_FLAG_X509_STRICT, on by default in Python 3.13+): critical
 * basicConstraints and keyUsage on the CA, subject/authority key identifiers
 * on every certificate, ecdsa-with-SHA256 without parameters, and a critical
 * subjectAltName where the subject is empty.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

export interface RunCa {
  /** PEM of the CA certificate (to add to the sandbox's trust store). */
  certPem: string;
  /** A leaf certificate + key for `host` (DNS name or IPv4 literal), signed by the CA; cached per host. */
  leaf(host: string): { certPem: string; keyPem: string };
}

/** The CA starts one hour in the past so a sandbox clock slightly behind ours still accepts it. */
const BACKDATE_MS = 60 * 60 * 1000;
const DEFAULT_VALIDITY_HOURS = 24;
/** RFC 5280 ub-common-name: a longer CN is invalid, so such hosts rely on subjectAltName alone. */
const MAX_CN = 64;

/**
 * A new CA: ECDSA P-256 key, self-signed, CA:TRUE pathlen 0,
 * keyCertSign|cRLSign, valid from now-1h to now+validityHours (default 24),
 * subject CN "Ward run CA <id>" where id is 8 random hex chars; serial numbers
 * random positive 16 bytes.
 */
export function createRunCa(opts?: { validityHours?: number }): RunCa {
  const hours = opts?.validityHours ?? DEFAULT_VALIDITY_HOURS;
  if (!Number.isFinite(hours) || hours <= 0) {
    throw new Error(`createRunCa: validityHours must be a positive number, got ${String(hours)}`);
  }
  const now = Date.now();
  const notBefore = new Date(now - BACKDATE_MS);
  const notAfter = new Date(now + hours * 60 * 60 * 1000);
  // GeneralizedTime has four year digits; past that the certificate cannot be written.
  if (notAfter.getUTCFullYear() > 9999) {
    throw new Error(`createRunCa: validityHours ${hours} ends after year 9999`);
  }
  const validity = seq(time(notBefore), time(notAfter));

  const caKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const caKeyId = keyIdentifier(caKeys.publicKey);
  // Encoded once and reused as every leaf's issuer: chain building matches issuer to subject byte for byte.
  const caName = nameWithCn(`Ward run CA ${randomBytes(4).toString('hex')}`);

  const caCert = buildCertificate({
    issuer: caName,
    subject: caName,
    validity,
    publicKey: caKeys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      // pathlen 0: the CA may sign leaves only, never another CA.
      extension(OID.basicConstraints, true, seq(der(TAG.BOOLEAN, Buffer.from([0xff])), integer(Buffer.from([0])))),
      extension(OID.keyUsage, true, keyUsageBits([KU.keyCertSign, KU.cRLSign])),
      extension(OID.subjectKeyIdentifier, false, der(TAG.OCTET_STRING, caKeyId)),
      // Optional on a self-signed certificate, but harmless and some validators look for it.
      extension(OID.authorityKeyIdentifier, false, seq(der(0x80, caKeyId))),
    ],
  });

  const leaves = new Map<string, { certPem: string; keyPem: string }>();

  return {
    certPem: pem('CERTIFICATE', caCert),
    leaf(host: string) {
      const target = parseHost(host);
      const cached = leaves.get(target.name);
      if (cached) return cached;

      const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const altName =
        target.kind === 'ip'
          ? der(0x87, Buffer.from(target.name.split('.').map(Number))) // iPAddress [7]
          : der(0x82, Buffer.from(target.name, 'ascii')); // dNSName [2]
      const hasCn = target.name.length <= MAX_CN;
      const cert = buildCertificate({
        issuer: caName,
        subject: hasCn ? nameWithCn(target.name) : seq(),
        // The CA's own window, so a leaf never outlives (or predates) its issuer.
        validity,
        publicKey: keys.publicKey,
        signingKey: caKeys.privateKey,
        extensions: [
          // Must be critical when the subject is empty (RFC 5280 4.2.1.6).
          extension(OID.subjectAltName, !hasCn, seq(altName)),
          // CA:FALSE is the DEFAULT, and DER omits defaults: an empty SEQUENCE.
          extension(OID.basicConstraints, true, seq()),
          extension(OID.keyUsage, true, keyUsageBits([KU.digitalSignature])),
          extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
          extension(OID.subjectKeyIdentifier, false, der(TAG.OCTET_STRING, keyIdentifier(keys.publicKey))),
          extension(OID.authorityKeyIdentifier, false, seq(der(0x80, caKeyId))), // keyIdentifier [0]
        ],
      });
      // Frozen because the same object is handed to every caller for this host.
      const issued = Object.freeze({
        certPem: pem('CERTIFICATE', cert),
        keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      });
      leaves.set(target.name, issued);
      return issued;
    },
  };
}

// ---------------------------------------------------------------------------
// Host names

/**
 * Checks and normalises a host: an IPv4 dotted quad, or a DNS name of
 * letter-digit-hyphen labels (lowercased, one trailing dot dropped, so
 * 'API.test.' and 'api.test' share a certificate). Anything else throws,
 * since a name a TLS client would not match against a dNSName (wildcards,
 * spaces, underscores, IPv6) would only produce a certificate nobody accepts.
 */
function parseHost(host: string): { kind: 'dns' | 'ip'; name: string } {
  const bad = (why: string): Error =>
    new Error(`ward CA: cannot issue a certificate for ${JSON.stringify(host)}: ${why}`);
  if (typeof host !== 'string' || host === '') throw bad('empty host');

  const quad = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (quad) {
    const parts = quad.slice(1);
    // Leading zeros are refused because some parsers read them as octal: '010.0.0.1' is ambiguous.
    if (parts.some((p) => Number(p) > 255 || (p.length > 1 && p.startsWith('0')))) {
      throw bad('not a valid IPv4 address');
    }
    return { kind: 'ip', name: host };
  }

  const name = (host.endsWith('.') ? host.slice(0, -1) : host).toLowerCase();
  if (name.length === 0 || name.length > 253) throw bad('not a valid DNS name (length)');
  const labels = name.split('.');
  for (const label of labels) {
    if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) {
      throw bad(
        label.includes('*')
          ? 'wildcards are not supported'
          : `not a valid DNS name or IPv4 address (label ${JSON.stringify(label)})`,
      );
    }
  }
  // An all-numeric last label is not a DNS name: clients parse '127.1' or '1.2.3.256' as (broken) IPv4.
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? '')) throw bad('not a valid DNS name or IPv4 address');
  return { kind: 'dns', name };
}

// ---------------------------------------------------------------------------
// Certificate assembly (RFC 5280 section 4.1)

interface CertificateParts {
  issuer: Buffer;
  subject: Buffer;
  validity: Buffer;
  publicKey: KeyObject;
  signingKey: KeyObject;
  extensions: Buffer[];
}

function buildCertificate(p: CertificateParts): Buffer {
  // ecdsa-with-SHA256 takes no parameters: the field is absent, not NULL (RFC 5758 3.2).
  const sigAlg = seq(oid(OID.ecdsaWithSha256));
  const tbs = seq(
    der(0xa0, integer(Buffer.from([2]))), // [0] EXPLICIT version: 2 means v3
    integer(serialNumber()),
    sigAlg,
    p.issuer,
    p.validity,
    p.subject,
    // Node already writes SubjectPublicKeyInfo (with the named-curve OID) correctly.
    p.publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa3, seq(...p.extensions)), // [3] EXPLICIT extensions
  );
  // Node's ECDSA signature is DER Ecdsa-Sig-Value by default, exactly what X.509 carries.
  const signature = sign('sha256', tbs, p.signingKey);
  return seq(tbs, sigAlg, bitString(signature));
}

/** 16 random bytes, top bit clear so the INTEGER is positive, first byte non-zero so DER needs no trimming. */
function serialNumber(): Buffer {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) || 1;
  return b;
}

/**
 * RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING
 * contents. For an EC key that is the uncompressed point 04 || x || y, rebuilt
 * from the JWK rather than cut out of the SPKI bytes.
 */
function keyIdentifier(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  if (!jwk.x || !jwk.y) throw new Error('ward CA: expected an EC public key');
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
  return createHash('sha1').update(point).digest();
}

/** A Name holding the single attribute commonName, as a UTF8String (what RFC 5280 asks new certificates to use). */
function nameWithCn(cn: string): Buffer {
  return seq(set(seq(oid(OID.commonName), der(TAG.UTF8String, Buffer.from(cn, 'utf8')))));
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }. */
function extension(id: string, critical: boolean, value: Buffer): Buffer {
  // DER forbids encoding a DEFAULT value, so a non-critical extension leaves the BOOLEAN out.
  const crit = critical ? [der(TAG.BOOLEAN, Buffer.from([0xff]))] : [];
  return seq(oid(id), ...crit, der(TAG.OCTET_STRING, value));
}

/** keyUsage bit numbers (RFC 5280 4.2.1.3); bit 0 is the most significant bit of the first byte. */
const KU = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

/** A KeyUsage BIT STRING: DER requires trailing zero bits dropped and counted in the unused-bits byte. */
function keyUsageBits(bits: number[]): Buffer {
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  const unused = 7 - (highest % 8);
  return der(TAG.BIT_STRING, Buffer.concat([Buffer.from([unused]), bytes]));
}

/** UTCTime through 2049 and GeneralizedTime from 2050, as RFC 5280 4.1.2.5 requires; whole seconds, UTC. */
function time(d: Date): Buffer {
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  const year = d.getUTCFullYear();
  const rest =
    pad(d.getUTCMonth() + 1) + pad(d.getUTCDate()) + pad(d.getUTCHours()) + pad(d.getUTCMinutes()) + pad(d.getUTCSeconds()) + 'Z';
  if (year >= 1950 && year < 2050) return der(TAG.UTCTime, Buffer.from(pad(year % 100) + rest, 'ascii'));
  return der(TAG.GeneralizedTime, Buffer.from(pad(year, 4) + rest, 'ascii'));
}

function pem(label: string, body: Buffer): string {
  const lines = body.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

// ---------------------------------------------------------------------------
// DER (X.690): only definite-length, primitive-or-constructed TLVs with one-byte tags.

const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8String: 0x0c,
  UTCTime: 0x17,
  GeneralizedTime: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

function der(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}

/** Short form below 128; otherwise 0x80|n followed by n big-endian length bytes, with no leading zero. */
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function seq(...items: Buffer[]): Buffer {
  return der(TAG.SEQUENCE, Buffer.concat(items));
}

/** A SET OF with a single member, so DER's sort-the-members rule has nothing to sort. */
function set(item: Buffer): Buffer {
  return der(TAG.SET, item);
}

/** An INTEGER from big-endian magnitude bytes the caller has already made minimal and positive. */
function integer(bytes: Buffer): Buffer {
  return der(TAG.INTEGER, bytes);
}

function bitString(bytes: Buffer): Buffer {
  return der(TAG.BIT_STRING, Buffer.concat([Buffer.from([0]), bytes])); // 0 unused bits
}

/** First two arcs packed as 40*a+b, then each arc base-128, high bit set on all but its last byte. */
function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const [a = 0, b = 0, ...rest] = arcs;
  const out: number[] = [];
  for (const arc of [40 * a + b, ...rest]) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return der(TAG.OID, Buffer.from(out));
}
