#!/usr/bin/env node
// An independent JOSE peer for the interop tests: the npm `jose` library signs,
// verifies, encrypts and decrypts what zhuanfu's core produces and consumes.
//
// Usage (input on stdin, result on stdout; exit 0 ok, 1 rejected, 2 usage, 3 setup):
//   version                                   print the jose version
//   verify-compact [--key SPKI.pem | --jwk KEY.json] [--ca ROOT.pem]
//                                             stdin: compact JWS; key from x5c unless given
//   verify-general [--ca ROOT.pem]            stdin: general JSON JWS; every signature is
//                                             checked with the key of its own x5c
//   sign-compact --alg ES256|EdDSA --key PKCS8.pem --x5c CHAIN.json [--typ T]
//                                             stdin: payload bytes; stdout: compact JWS
//   sign-general --signer ALG,PKCS8.pem,CHAIN.json (repeat) [--typ T]
//                                             stdin: payload bytes; stdout: general JWS
//   decrypt --key PKCS8.pem [--kid KID]       stdin: general JWE; stdout: plaintext
//   encrypt --recipient SPKI.pem[,KID] (repeat)
//                                             stdin: plaintext; stdout: general JWE
// verify-* print {"payload": <UTF-8 text>, "signatures": [{"alg","typ","subject"}]}.
// CHAIN.json is a JSON array of standard base64 DER certificates, leaf first (x5c).
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createRequire } from 'node:module';

let jose;
try {
  jose = await import('jose');
} catch (e) {
  process.stderr.write(
    `jose_peer: the npm package "jose" is not installed (run "npm ci" in tests/interop): ${e.message}\n`);
  process.exit(3);
}

const SIG_ALGS = ['ES256', 'EdDSA'];
const KEY_ALG = 'ECDH-ES+A256KW';
const ENC = 'A256GCM';

class UsageError extends Error {}

function parseArgs(argv) {
  const opts = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      opts._.push(a);
      continue;
    }
    const name = a.slice(2);
    if (i + 1 >= argv.length) throw new UsageError(`option ${a} needs a value`);
    const value = argv[++i];
    if (name === 'signer' || name === 'recipient') (opts[name] ??= []).push(value);
    else opts[name] = value;
  }
  return opts;
}

function readStdin() {
  return readFileSync(0);
}

function need(opts, name) {
  if (opts[name] === undefined) throw new UsageError(`--${name} is required`);
  return opts[name];
}

function derToPem(b64, label) {
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function readChain(path) {
  const chain = JSON.parse(readFileSync(path, 'utf8'));
  if (!Array.isArray(chain) || chain.length === 0 || !chain.every((c) => typeof c === 'string'))
    throw new UsageError(`${path}: must be a non-empty JSON array of base64 certificates`);
  return chain;
}

// Checks the x5c chain with Node's X.509 support: each certificate is signed by the
// next one and the last by the root. (jose itself does no chain building.)
function checkChain(x5c, rootPemPath) {
  if (!Array.isArray(x5c) || x5c.length === 0) throw new Error('x5c missing');
  const certs = x5c.map((b64) => new X509Certificate(Buffer.from(b64, 'base64')));
  const root = new X509Certificate(readFileSync(rootPemPath));
  const now = Date.now();
  for (let i = 0; i < certs.length; i++) {
    const cert = certs[i];
    const issuer = i + 1 < certs.length ? certs[i + 1] : root;
    if (cert.fingerprint256 === root.fingerprint256) break;
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey))
      throw new Error(`x5c[${i}] is not signed by its issuer`);
    if (Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) < now)
      throw new Error(`x5c[${i}] is outside its validity period`);
  }
  return certs[0].subject;
}

async function keyFromX5c(header) {
  if (!Array.isArray(header.x5c) || typeof header.x5c[0] !== 'string')
    throw new Error('protected header has no x5c');
  return jose.importX509(derToPem(header.x5c[0], 'CERTIFICATE'), header.alg);
}

function describe(header, subject) {
  return { alg: header.alg, typ: header.typ ?? null, subject: subject ?? null };
}

async function verifyCompact(opts) {
  const jws = readStdin().toString('utf8').trim();
  const header = jose.decodeProtectedHeader(jws);
  let key;
  if (opts.key) key = await jose.importSPKI(readFileSync(opts.key, 'utf8'), header.alg);
  else if (opts.jwk) key = await jose.importJWK(JSON.parse(readFileSync(opts.jwk, 'utf8')), header.alg);
  else key = await keyFromX5c(header);
  const { payload, protectedHeader } = await jose.compactVerify(jws, key, { algorithms: SIG_ALGS });
  const subject = opts.ca ? checkChain(protectedHeader.x5c, opts.ca) : undefined;
  return {
    payload: new TextDecoder('utf-8', { fatal: true }).decode(payload),
    signatures: [describe(protectedHeader, subject)],
  };
}

async function verifyGeneral(opts) {
  const jws = JSON.parse(readStdin().toString('utf8'));
  if (!Array.isArray(jws.signatures) || jws.signatures.length === 0)
    throw new Error('general JWS has no signatures');
  // generalVerify stops at the first signature that verifies; we need all of them, so
  // each is verified on its own as a flattened JWS, then generalVerify is exercised too.
  const signatures = [];
  let payload;
  for (const s of jws.signatures) {
    const flat = { payload: jws.payload, protected: s.protected, signature: s.signature };
    if (s.header !== undefined) flat.header = s.header;
    const out = await jose.flattenedVerify(flat, keyFromX5c, { algorithms: SIG_ALGS });
    const subject = opts.ca ? checkChain(out.protectedHeader.x5c, opts.ca) : undefined;
    signatures.push(describe(out.protectedHeader, subject));
    payload = out.payload;
  }
  await jose.generalVerify(jws, keyFromX5c, { algorithms: SIG_ALGS });
  return { payload: new TextDecoder('utf-8', { fatal: true }).decode(payload), signatures };
}

function protectedHeader(alg, x5c, typ) {
  if (!SIG_ALGS.includes(alg)) throw new UsageError(`unsupported alg ${alg}`);
  const h = { alg, x5c };
  if (typ) h.typ = typ;
  return h;
}

async function signCompact(opts) {
  const alg = need(opts, 'alg');
  const key = await jose.importPKCS8(readFileSync(need(opts, 'key'), 'utf8'), alg);
  const header = protectedHeader(alg, readChain(need(opts, 'x5c')), opts.typ);
  return new jose.CompactSign(readStdin()).setProtectedHeader(header).sign(key);
}

async function signGeneral(opts) {
  const signers = need(opts, 'signer');
  const sign = new jose.GeneralSign(readStdin());
  for (const spec of signers) {
    const [alg, keyPath, chainPath] = spec.split(',');
    if (!chainPath) throw new UsageError(`--signer wants ALG,KEY.pem,CHAIN.json, got ${spec}`);
    const key = await jose.importPKCS8(readFileSync(keyPath, 'utf8'), alg);
    sign.addSignature(key).setProtectedHeader(protectedHeader(alg, readChain(chainPath), opts.typ));
  }
  return JSON.stringify(await sign.sign());
}

async function decrypt(opts) {
  const jwe = JSON.parse(readStdin().toString('utf8'));
  const key = await jose.importPKCS8(readFileSync(need(opts, 'key'), 'utf8'), KEY_ALG);
  // With --kid only the recipient entry labelled with it may be used.
  // jose passes the protected header and the flattened JWE of the recipient being tried.
  const getKey = (protectedHdr, flattened) => {
    const kid = flattened?.header?.kid ?? protectedHdr?.kid;
    if (opts.kid !== undefined && kid !== opts.kid) throw new Error('other recipient');
    return key;
  };
  const { plaintext } = await jose.generalDecrypt(jwe, getKey, {
    keyManagementAlgorithms: [KEY_ALG],
    contentEncryptionAlgorithms: [ENC],
  });
  return Buffer.from(plaintext);
}

async function encrypt(opts) {
  const recipients = need(opts, 'recipient');
  const enc = new jose.GeneralEncrypt(readStdin()).setProtectedHeader({ enc: ENC });
  for (const spec of recipients) {
    const [path, kid] = spec.split(',');
    const key = await jose.importSPKI(readFileSync(path, 'utf8'), KEY_ALG);
    const header = { alg: KEY_ALG };
    if (kid) header.kid = kid;
    enc.addRecipient(key).setUnprotectedHeader(header);
  }
  return JSON.stringify(await enc.encrypt());
}

const commands = {
  version: async () => {
    const require = createRequire(import.meta.url);
    return require('jose/package.json').version;
  },
  'verify-compact': async (o) => JSON.stringify(await verifyCompact(o)),
  'verify-general': async (o) => JSON.stringify(await verifyGeneral(o)),
  'sign-compact': signCompact,
  'sign-general': signGeneral,
  decrypt,
  encrypt,
};

try {
  const [command, ...rest] = process.argv.slice(2);
  const run = commands[command];
  if (!run) throw new UsageError(`unknown command ${command ?? '(none)'}`);
  const out = await run(parseArgs(rest));
  process.stdout.write(out);
} catch (e) {
  const usage = e instanceof UsageError;
  const kind = usage ? 'usage' : typeof e.code === 'string' ? e.code : e.name;
  process.stderr.write(`jose_peer: ${kind}: ${e.message}\n`);
  process.exit(usage ? 2 : 1);
}
