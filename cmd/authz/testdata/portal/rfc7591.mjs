// Dynamic client registration (RFC 7591) with openid-client 5, a client
// library no one here wrote, and client management (RFC 7592) by hand, as
// the RFC describes it: register with an initial access token, read,
// update, delete; and the refusals that must change nothing.
//
// Configuration comes from the environment:
//   ISSUER_URL    the issuer, found by discovery
//   IAT           an initial access token with uses to spare
//   IAT_ONE_USE   an initial access token with exactly one use
//   IAT_EXPIRED   an initial access token past its expiry
import { strict as assert } from 'node:assert';
import { generateKeyPairSync } from 'node:crypto';
import { Issuer } from 'openid-client';

const env = (name) => process.env[name];
const step = (name) => process.stderr.write(`rfc7591: ${name}\n`);

const issuer = await Issuer.discover(env('ISSUER_URL'));
assert.ok(issuer.registration_endpoint, 'discovery names the registration endpoint');

// Register with an initial access token, and get a token as the client.
step('register (client_secret_basic)');
const client = await issuer.Client.register(
  { client_name: 'rfc7591 client', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'read' },
  { initialAccessToken: env('IAT') },
);
const meta = client.metadata;
assert.ok(meta.client_id && meta.client_secret, 'client_id and client_secret');
assert.equal(meta.client_secret_expires_at, 0);
assert.ok(meta.registration_access_token && meta.registration_client_uri, 'RFC 7592 credentials');
assert.deepEqual(meta.grant_types, ['client_credentials']);
const tokenSet = await client.grant({ grant_type: 'client_credentials' });
assert.ok(tokenSet.access_token, 'a token for the registered client');
assert.equal(tokenSet.scope, 'read');

// Read it back with its registration access token: no rotation.
step('read');
const read = await issuer.Client.fromUri(meta.registration_client_uri, meta.registration_access_token);
assert.equal(read.client_id, meta.client_id);
assert.equal(read.client_name, 'rfc7591 client');
assert.equal(read.client_secret, undefined, 'the secret is not shown again');

// RFC 7592 §2.2 update: the whole metadata, with the client's id; the
// answer carries a new registration access token.
async function manage(method, token, body) {
  return fetch(meta.registration_client_uri, {
    method,
    headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
}
step('update');
const update = { client_id: meta.client_id, client_name: 'renamed', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_post', scope: 'read' };
let response = await manage('PUT', meta.registration_access_token, update);
assert.equal(response.status, 200, await response.clone().text());
const updated = await response.json();
assert.equal(updated.client_name, 'renamed');
assert.equal(updated.scope, 'read');
const rotated = updated.registration_access_token;
assert.ok(rotated && rotated !== meta.registration_access_token, 'a new registration access token');

const refusals = {};
async function refused(name, response, status, error) {
  const body = await response.json().catch(() => ({}));
  assert.equal(response.status, status, `${name}: ${JSON.stringify(body)}`);
  assert.equal(body.error, error, `${name}: ${JSON.stringify(body)}`);
  assert.ok(body.error_description, `${name} says why`);
  refusals[name] = body;
}

step('refusals');
await refused('old registration access token', await manage('GET', meta.registration_access_token), 401, 'invalid_token');
await refused('old token cannot update', await manage('PUT', meta.registration_access_token, { ...update, client_name: 'hijacked' }), 401, 'invalid_token');
await refused('wrong registration access token', await manage('GET', rotated.slice(0, -4) + 'AAAA'), 401, 'invalid_token');
await refused('a client widening its own scopes', await manage('PUT', rotated, { ...update, scope: 'read write' }), 400, 'invalid_client_metadata');
await refused('update to authorization_code', await manage('PUT', rotated, { ...update, grant_types: ['authorization_code'] }), 400, 'invalid_client_metadata');
const register = (token, metadata) => fetch(issuer.registration_endpoint, {
  method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify(metadata),
});
await refused('authorization_code client', await register(env('IAT'), { client_name: 'web app', grant_types: ['authorization_code'], redirect_uris: ['https://app.example/cb'] }), 400, 'invalid_client_metadata');
await refused('public client', await register(env('IAT'), { client_name: 'spa', grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' }), 400, 'invalid_client_metadata');
await refused('expired initial access token', await register(env('IAT_EXPIRED'), { client_name: 'late', grant_types: ['client_credentials'] }), 401, 'invalid_token');
let once = await register(env('IAT_ONE_USE'), { client_name: 'first', grant_types: ['client_credentials'] });
assert.equal(once.status, 201, 'the one use of a one-use token');
await refused('used-up initial access token', await register(env('IAT_ONE_USE'), { client_name: 'second', grant_types: ['client_credentials'] }), 401, 'invalid_token');
await refused('no token', await register('', { client_name: 'anonymous', grant_types: ['client_credentials'] }).then((r) => r), 401, 'invalid_token');
await refused('a registration access token cannot register', await register(rotated, { client_name: 'sibling', grant_types: ['client_credentials'] }), 401, 'invalid_token');

// The client still works and still has the name it had.
const current = await issuer.Client.fromUri(meta.registration_client_uri, rotated);
assert.equal(current.client_name, 'renamed');

// private_key_jwt with a registered JWK set: openid-client signs the
// assertion with the private half.
step('register (private_key_jwt)');
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };
const jwtClient = await issuer.Client.register(
  { client_name: 'rfc7591 jwt client', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'RS256' },
  { initialAccessToken: env('IAT'), jwks: { keys: [jwk] } },
);
assert.equal(jwtClient.metadata.client_secret, undefined, 'no secret for a key-based client');
assert.ok((await jwtClient.grant({ grant_type: 'client_credentials' })).access_token, 'a token for the private_key_jwt client');

// Delete; the registration access token dies with the client.
step('delete');
response = await manage('DELETE', rotated);
assert.equal(response.status, 204);
await refused('read after delete', await manage('GET', rotated), 401, 'invalid_token');

process.stdout.write(JSON.stringify({ clientId: meta.client_id, jwtClientId: jwtClient.metadata.client_id, refusals: Object.keys(refusals).join(',') }) + '\n');
