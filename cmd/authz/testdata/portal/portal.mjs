// The API services portal's identity-provider sequence, made the way the
// portal backend makes it (bcgov/api-services-portal, src/services/keycloak
// and src/services/workflow): discovery, a managed-mode token, a
// registration in Keycloak's representation, the admin client's calls to
// sync scopes and roles, the enabling update, then the portal tutorial's
// token request. Every step checks what the portal relies on, and the
// script prints one JSON line for the Go test to verify the token with
// the gateway's rules.
//
// Configuration comes from the environment:
//   ISSUER_URL        https://host/realms/<realm>, as the portal is configured
//   MODE              managed | iat | anonymous (the portal's clientRegistration)
//   SA_CLIENT_ID, SA_CLIENT_SECRET   the portal's service account of the realm
//   IAT               the initial access token, in iat mode
//   AUTHENTICATOR     client-secret | client-jwt | client-jwt-jwks-url
//   PUBLIC_KEY_PEM, PRIVATE_KEY_PEM  the consumer's key pair, for client-jwt
//   JWKS_URL          the consumer's JWKS, for client-jwt-jwks-url
//   CONSUMER_ID       the consumer's client id
//   AUDIENCE          the value of the audience mapper, if any
//   DEFAULT_SCOPES    space-separated default scopes the access grants
//   ROLES             space-separated roles the access grants
//   REMOVE_WITH       registration | admin: delete the consumer at the end
import { strict as assert } from 'node:assert';
import { randomUUID, createSign } from 'node:crypto';
import KcAdminClient from '@keycloak/keycloak-admin-client';

const env = (name, fallback) => process.env[name] ?? fallback;
const issuerUrl = env('ISSUER_URL');
const mode = env('MODE', 'managed');
const authenticator = env('AUTHENTICATOR', 'client-secret');
const consumerId = env('CONSUMER_ID');
const saClientId = env('SA_CLIENT_ID');
const saClientSecret = env('SA_CLIENT_SECRET');
const defaultScopes = env('DEFAULT_SCOPES', '').split(' ').filter(Boolean);
const roles = env('ROLES', '').split(' ').filter(Boolean);

const step = (name) => process.stderr.write(`portal: ${name}\n`);

// The portal's headers for the registration service: a lower-case scheme.
const headers = (token) => ({
  Accept: 'application/json',
  'Content-Type': 'application/json',
  ...(token ? { Authorization: 'bearer ' + token } : {}),
});

async function ok(response, what) {
  if (!response.ok) {
    throw new Error(`${what}: ${response.status} ${await response.text()}`);
  }
  return response;
}

// 1. Discovery.
step('discovery');
const openid = await (await ok(await fetch(`${issuerUrl}/.well-known/openid-configuration`, { headers: headers() }), 'discovery')).json();
assert.equal(openid.issuer, issuerUrl);
assert.ok(openid.token_endpoint && openid.registration_endpoint, 'token and registration endpoints');

// 2. The registration token: the service account's in managed mode.
async function serviceAccountToken() {
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: saClientId, client_secret: saClientSecret });
  const response = await ok(await fetch(openid.token_endpoint, {
    method: 'post', body: form,
    headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
  }), 'service account token');
  return (await response.json()).access_token;
}
step(`registration token (${mode})`);
const token = mode === 'anonymous' ? null : mode === 'managed' ? await serviceAccountToken() : env('IAT');

// 3. Registration, in Keycloak's representation, at /default.
const registrationUrl = openid.registration_endpoint.replace('/openid-connect', '/default');
const consumerSecret = randomUUID();
const body = {
  clientId: consumerId, name: '', description: '', surrogateAuthRequired: false, enabled: false,
  alwaysDisplayInConsole: false, clientAuthenticatorType: authenticator === 'client-secret' ? 'client-secret' : 'client-jwt',
  redirectUris: ['https://*'], webOrigins: ['*'], notBefore: 0, bearerOnly: false, consentRequired: false,
  standardFlowEnabled: false, implicitFlowEnabled: false, directAccessGrantsEnabled: false, serviceAccountsEnabled: true,
  publicClient: false, frontchannelLogout: false, protocol: 'openid-connect',
  attributes: { 'saml.assertion.signature': 'false', 'client_credentials.use_refresh_token': 'false', 'display.on.consent.screen': 'false' },
  authenticationFlowBindingOverrides: {}, fullScopeAllowed: false, nodeReRegistrationTimeout: -1,
  protocolMappers: [], defaultClientScopes: [], optionalClientScopes: [],
  access: { view: true, configure: true, manage: true },
};
if (authenticator === 'client-secret') {
  body.secret = consumerSecret;
} else if (authenticator === 'client-jwt') {
  body.attributes = { 'jwt.credential.public.key': env('PUBLIC_KEY_PEM') };
} else {
  body.attributes = { 'jwt.credential.public.key': '', 'jwks.url': env('JWKS_URL'), 'use.jwks.url': 'true' };
}
if (env('AUDIENCE')) {
  body.protocolMappers.push({
    name: 'audience-rule-1', protocol: 'openid-connect', protocolMapper: 'oidc-audience-mapper', consentRequired: false,
    config: { 'id.token.claim': 'false', 'access.token.claim': 'true', 'included.custom.audience': env('AUDIENCE') },
  });
}
step('register');
const registered = await (await ok(await fetch(registrationUrl, { method: 'post', body: JSON.stringify(body), headers: headers(token) }), 'registration')).json();
assert.equal(registered.clientId, consumerId);
assert.equal(registered.enabled, false);
assert.ok(registered.id && registered.id !== consumerId, 'an internal id distinct from the client id');
assert.ok(registered.registrationAccessToken, 'a registration access token');

// 5. The admin client, logged in as the service account. Its baseUrl and
// realm come from the issuer URL, as the portal derives them.
const baseUrl = issuerUrl.substr(0, issuerUrl.indexOf('/realms'));
const realmName = issuerUrl.substr(issuerUrl.lastIndexOf('/') + 1);
const kc = new KcAdminClient({ baseUrl, realmName });
step('admin login');
await kc.auth({ grantType: 'client_credentials', clientId: saClientId, clientSecret: saClientSecret });

const findOneByClientId = async (clientId) => {
  const found = await kc.clients.find({ clientId });
  assert.equal(found.length, 1, 'Client ID not found ' + clientId);
  return found[0];
};

// syncAndApply: default scopes (and "roles" when the access grants roles).
step('sync scopes');
const allScopes = await kc.clientScopes.find();
const scopeToId = Object.fromEntries(allScopes.map((s) => [s.name, s.id]));
const consumer = await findOneByClientId(consumerId);
assert.equal(consumer.id, registered.id);
const wantDefault = roles.length ? [...defaultScopes, 'roles'] : defaultScopes;
for (const optional of [false, true]) {
  const want = optional ? [] : wantDefault;
  const current = optional ? await kc.clients.listOptionalClientScopes({ id: consumer.id }) : await kc.clients.listDefaultClientScopes({ id: consumer.id });
  const add = want.filter((name) => !current.some((s) => s.name === name)).map((name) => scopeToId[name]);
  assert.ok(add.every(Boolean), 'One or more scopes missing from IdP - ' + want);
  const del = current.filter((s) => !want.includes(s.name)).map((s) => s.id);
  for (const clientScopeId of add) {
    await (optional ? kc.clients.addOptionalClientScope : kc.clients.addDefaultClientScope)({ id: consumer.id, clientScopeId });
  }
  for (const clientScopeId of del) {
    await (optional ? kc.clients.delOptionalClientScope : kc.clients.delDefaultClientScope)({ id: consumer.id, clientScopeId });
  }
}
assert.deepEqual((await kc.clients.listDefaultClientScopes({ id: consumer.id })).map((s) => s.name).sort(), [...wantDefault].sort());

// The roles client is the service account's own client: its roles are the
// API's (syncRoles), assigned to the consumer's service account
// (syncAssignedRoles) and then allowed in its tokens (scope mappings).
if (roles.length) {
  step('sync roles');
  const rolesClient = await findOneByClientId(saClientId);
  const existing = await kc.clients.listRoles({ id: rolesClient.id });
  await Promise.all(roles.filter((r) => !existing.some((e) => e.name === r)).map((name) => kc.clients.createRole({ id: rolesClient.id, name })));
  const stale = await kc.clients.createRole({ id: rolesClient.id, name: 'stale-role' });
  assert.equal(stale.roleName, 'stale-role', 'createRole reads the name from Location');
  await kc.clients.delRole({ id: rolesClient.id, roleName: 'stale-role' });
  const available = await kc.clients.listRoles({ id: rolesClient.id });
  const selected = available.filter((r) => roles.includes(r.name)).map((r) => ({ id: r.id, name: r.name }));
  assert.equal(selected.length, roles.length, 'Role not found for client');

  const user = await kc.clients.getServiceAccountUser({ id: consumer.id });
  assert.equal(user.username, 'service-account-' + consumerId.toLowerCase());
  const current = await kc.users.listClientRoleMappings({ id: user.id, clientUniqueId: rolesClient.id });
  const add = selected.filter((r) => !current.some((c) => c.name === r.name));
  const del = current.filter((c) => !selected.some((r) => r.name === c.name)).map((c) => ({ id: c.id, name: c.name }));
  if (add.length) await kc.users.addClientRoleMappings({ id: user.id, clientUniqueId: rolesClient.id, roles: add });
  if (del.length) await kc.users.delClientRoleMappings({ id: user.id, clientUniqueId: rolesClient.id, roles: del });
  assert.deepEqual((await kc.users.listClientRoleMappings({ id: user.id, clientUniqueId: rolesClient.id })).map((r) => r.name).sort(), [...roles].sort());

  await kc.clients.addClientScopeMappings({ id: consumer.id, client: rolesClient.id }, await kc.clients.listRoles({ id: rolesClient.id }));
}

// Key changes go through a read-modify-write of the whole representation.
if (authenticator === 'client-jwt') {
  step('update certificate');
  const rep = await kc.clients.findOne({ id: consumer.id });
  rep.attributes['jwks.url'] = '';
  rep.attributes['jwt.credential.public.key'] = env('PUBLIC_KEY_PEM');
  rep.attributes['use.jwks.url'] = 'false';
  await kc.clients.update({ id: rep.id }, rep);
}

// 4. Enabling, through the registration service.
step('enable');
const enabled = await (await ok(await fetch(`${registrationUrl}/${consumerId}`, {
  method: 'put', body: JSON.stringify({ clientId: consumerId, enabled: true }), headers: headers(token),
}), 'enable')).json();
assert.equal(enabled.enabled, true);
assert.equal(enabled.clientId, consumerId);

// The tutorial's token request: a form post, with the portal's "scopes".
async function tutorialToken(secret) {
  const form = new URLSearchParams({ client_id: consumerId, grant_type: 'client_credentials', scopes: 'openid' });
  if (authenticator === 'client-secret') {
    form.set('client_secret', secret);
  } else {
    form.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    form.set('client_assertion', assertion());
  }
  return fetch(openid.token_endpoint, { method: 'post', body: form, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
}

// A write reaches every node's client cache through PostgreSQL's NOTIFY,
// within a second as the README promises, the writing node's too: a
// refusal that must follow a write is awaited that long, no longer.
async function statusWithin(want, request, message) {
  const deadline = Date.now() + 2000;
  let status;
  do {
    status = (await request()).status;
    if (status === want) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  } while (Date.now() < deadline);
  assert.equal(status, want, message);
}

function assertion() {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ iss: consumerId, sub: consumerId, aud: openid.token_endpoint, jti: randomUUID(), iat: now, exp: now + 60 })}`;
  return `${input}.${createSign('RSA-SHA256').update(input).sign(env('PRIVATE_KEY_PEM')).toString('base64url')}`;
}

step('tutorial token');
let answer = await (await ok(await tutorialToken(consumerSecret), 'tutorial token')).json();

// A new secret replaces the old one at once.
let secret = consumerSecret;
if (authenticator === 'client-secret') {
  step('new secret');
  const cred = await kc.clients.generateNewClientSecret({ id: consumer.id });
  assert.equal(cred.type, 'secret');
  await statusWithin(401, () => tutorialToken(consumerSecret), 'the old secret is refused');
  secret = cred.value;
  answer = await (await ok(await tutorialToken(secret), 'token with the new secret')).json();
}

// A secret is kept as a digest: reading it back is refused with a reason.
await assert.rejects(kc.clients.getClientSecret({ id: consumer.id }), (err) => err.response?.status === 404 && /digest/.test(err.message));
// A call outside the subset names itself.
await assert.rejects(kc.clients.findUsersWithRole({ id: consumer.id, roleName: 'x' }), (err) => err.response?.status === 501);

// Removal: the portal deletes through the registration service; an
// operator's script might use the admin client.
const removeWith = env('REMOVE_WITH', '');
if (removeWith) {
  step(`remove (${removeWith})`);
  if (removeWith === 'registration') {
    await ok(await fetch(`${registrationUrl}/${consumerId}`, { method: 'delete', headers: headers(token) }), 'delete registration');
  } else {
    await kc.clients.del({ id: consumer.id });
  }
  assert.equal((await kc.clients.find({ clientId: consumerId })).length, 0, 'the client is gone');
  assert.equal(await kc.clients.findOne({ id: consumer.id }), null, 'findOne of a deleted client');
  await statusWithin(401, () => tutorialToken(secret), 'a deleted client gets no token');
}

process.stdout.write(JSON.stringify({ token: answer.access_token, clientId: consumerId, internalId: consumer.id, secret }) + '\n');
