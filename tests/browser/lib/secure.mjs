// TLS and playback-token helpers for the browser tests: a throwaway test CA and
// a server certificate for 127.0.0.1/localhost made with openssl at test time,
// the base64 SHA-256 of the leaf's SubjectPublicKeyInfo (what Chromium's
// --ignore-certificate-errors-spki-list takes), HTTPS GETs from node that
// trust only that CA (over HTTP/2, so each also proves ALPN h2), and EdgeAuth
// 2.0 tokens made by Akamai's own akamai-edgeauth package (PyPI) in the
// virtualenv scripts/install-deps.sh makes.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';

function openssl(args, cwd) {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error) throw new Error(`openssl ${args[0]}: ${r.error.message} (apt-get install -y openssl)`);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
}

/**
 * A test CA and a server certificate it signed, for 127.0.0.1 and localhost
 * (ECDSA P-256, valid 2 days), in `dir`. Returns {dir, caCert, cert (leaf +
 * CA chain, leaf first), key, leafCert, ca (CA PEM text), spki (base64
 * SHA-256 of the leaf's SubjectPublicKeyInfo)}.
 */
export function makeTestPki(dir) {
  const p = (f) => path.join(dir, f);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=casterpak browser-test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  fs.writeFileSync(p('server.ext'), [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '',
  ].join('\n'));
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '2', '-sha256', '-extfile', 'server.ext', '-out', 'server.pem'], dir);
  const leaf = fs.readFileSync(p('server.pem'), 'utf8');
  const ca = fs.readFileSync(p('ca.pem'), 'utf8');
  fs.writeFileSync(p('server-chain.pem'), leaf + ca);
  const spkiDer = new crypto.X509Certificate(leaf).publicKey.export({ type: 'spki', format: 'der' });
  return {
    dir,
    caCert: p('ca.pem'),
    cert: p('server-chain.pem'),
    key: p('server.key'),
    leafCert: p('server.pem'),
    ca,
    spki: crypto.createHash('sha256').update(spkiDer).digest('base64'),
  };
}

/**
 * GET `url` (https) over HTTP/2, trusting only `ca` (PEM text). Resolves
 * {status, headers, body (text), alpn ('h2')}; rejects on a TLS or
 * connection error (e.g. the server not offering h2 by ALPN).
 */
export function h2Get(url, { ca, headers = {}, timeoutMs = 5000 } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const session = http2.connect(u.origin, { ca });
    const timer = setTimeout(() => { session.destroy(); reject(new Error(`GET ${url}: timed out after ${timeoutMs} ms`)); }, timeoutMs);
    const fail = (e) => { clearTimeout(timer); session.destroy(); reject(e); };
    session.on('error', fail);
    const req = session.request({ ':path': u.pathname + u.search, ...headers });
    req.setEncoding('utf8');
    let respHeaders = {};
    let body = '';
    req.on('response', (h) => { respHeaders = h; });
    req.on('data', (d) => { body += d; });
    req.on('error', fail);
    req.on('end', () => {
      clearTimeout(timer);
      const alpn = session.alpnProtocol;
      session.close();
      resolve({ status: respHeaders[':status'], headers: respHeaders, body, alpn, ok: respHeaders[':status'] < 400 });
    });
    req.end();
  });
}

/** Where scripts/install-deps.sh installs akamai-edgeauth. */
export function edgeAuthPython() {
  const venv = process.env.CASTERPAK_EDGEAUTH_VENV ||
    path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'casterpak', 'edgeauth-0.3.2');
  return path.join(venv, 'bin', 'python');
}

/**
 * EdgeAuth 2.0 ACL tokens from Akamai's own package, one per spec:
 * {acl, windowSeconds} (valid from now) or {acl, startTime, endTime} (Unix
 * seconds, e.g. both in the past for an expired token); `key` is the hex key.
 * Returns the token strings (`exp=...~acl=...~hmac=...`) in order.
 */
export function edgeAuthTokens(key, specs, { tokenName = 'hdnts' } = {}) {
  const py = edgeAuthPython();
  if (!fs.existsSync(py)) throw new Error(`akamai-edgeauth venv not found at ${py} (run scripts/install-deps.sh)`);
  const script = [
    'import json, sys',
    'from akamai.edgeauth import EdgeAuth',
    'key, name, specs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])',
    'out = []',
    'for s in specs:',
    '    kw = {"window_seconds": s["windowSeconds"]} if "windowSeconds" in s else {"start_time": s["startTime"], "end_time": s["endTime"]}',
    '    out.append(EdgeAuth(key=key, token_name=name, **kw).generate_acl_token(s["acl"]))',
    'print(json.dumps(out))',
  ].join('\n');
  // EdgeAuth 0.3.2 computes "now" as time.mktime(time.gmtime()): right only in UTC.
  const r = spawnSync(py, ['-c', script, key, tokenName, JSON.stringify(specs)], {
    encoding: 'utf8', env: { ...process.env, TZ: 'UTC' },
  });
  if (r.status !== 0) throw new Error(`akamai-edgeauth failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout);
}
