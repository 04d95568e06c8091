// The Digital Credentials Consortium's verifier-core, as a wallet or a verifier app would run it: it resolves the
// issuer's did:web over HTTPS (the test serves it on loopback, its CA given to Node by NODE_EXTRA_CA_CERTS) and
// reads the status list from the credential. Prints its verdict as JSON.
import { readFileSync } from 'node:fs';
import { verifyCredential } from '@digitalcredentials/verifier-core';

const credential = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const result = await verifyCredential({ credential, knownDIDRegistries: [] });
const steps = Object.fromEntries((result.log ?? []).map((step) => [step.id, step.valid]));
const fatal = result.errors?.find((e) => e.name) ?? null;
console.log(JSON.stringify({ steps, fatal: fatal ? `${fatal.name}: ${fatal.message}` : null, result }));
