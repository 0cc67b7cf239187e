// Reads X.509 certificates with node's crypto.X509Certificate for the zhuanfu interop
// tests: one JSON object per PEM file named on the command line,
// {file: {cn, uid, ca, eku, dns, ip, uri}}, or a non-zero exit naming the file that failed.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

// "CN=bank-a\nUID=alice" -> the value of `key`.
function attribute(subject, key) {
  for (const line of subject.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && line.slice(0, eq) === key) return line.slice(eq + 1);
  }
  return '';
}

// "DNS:localhost, IP Address:127.0.0.1, URI:urn:..." -> {dns, ip, uri}.
function altNames(text) {
  const out = { dns: [], ip: [], uri: [] };
  if (!text) return out;
  for (const part of text.split(', ')) {
    if (part.startsWith('DNS:')) out.dns.push(part.slice(4));
    else if (part.startsWith('IP Address:')) out.ip.push(part.slice(11));
    else if (part.startsWith('URI:')) out.uri.push(part.slice(4));
  }
  return out;
}

const out = {};
for (const path of process.argv.slice(2)) {
  let cert;
  try {
    cert = new X509Certificate(readFileSync(path));
  } catch (e) {
    console.error(`${path}: ${e.message}`);
    process.exit(1);
  }
  out[path] = {
    cn: attribute(cert.subject, 'CN'),
    uid: attribute(cert.subject, 'UID'),
    ca: cert.ca,
    eku: cert.keyUsage ?? [],
    ...altNames(cert.subjectAltName),
  };
}
console.log(JSON.stringify(out));
