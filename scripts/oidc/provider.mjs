// A real OpenID provider for opencm's tests: panva's oidc-provider (OpenID Certified), issuing
// JWT access tokens for the resource `api://opencm` (resource indicators), signed with keys it
// publishes in its JWKS and discovery document. For tests only it also answers
// `GET /test/token?sub=LOGIN&groups=SID,SID&aud=…&ttl=SECONDS&claims={…}`, minting an access token through the
// provider's own AccessToken model (so the token is exactly what the provider issues), with the
// claims ADFS and Entra ID put in theirs: `upn`, and the group SIDs in `groups`.
//
// For the portal's sign-in (the authorization-code flow) it also accepts dynamic client
// registration (RFC 7591, `POST /reg`), so a test registers opencm with its own redirect URI; PKCE
// is required of every client; its development login form accepts any login (the password is
// ignored) and the account's ID token names it in `upn` as ADFS and Entra ID do.
//
// Usage: node provider.mjs PORT  — prints "oidc-provider listening on http://127.0.0.1:PORT".
import Provider from 'oidc-provider';
import http from 'node:http';
import crypto from 'node:crypto';

const port = Number(process.argv[2] || 0);
const issuer = `http://127.0.0.1:${port}`;
const RESOURCE = 'api://opencm';

const provider = new Provider(issuer, {
  clients: [{ client_id: 'opencm-tests', client_secret: 'not-a-secret-for-tests', grant_types: ['client_credentials'], redirect_uris: [], response_types: [], id_token_signed_response_alg: 'ES256' }],
  features: {
    clientCredentials: { enabled: true },
    registration: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'openid',
        audience: resource,
        accessTokenFormat: 'jwt',
        accessTokenTTL: 600,
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  // A fresh P-256 signing key per run, published in the JWKS under its own kid.
  jwks: {
    keys: [
      {
        ...crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
        kid: crypto.randomUUID(),
        alg: 'ES256',
        use: 'sig',
      },
    ],
  },
  extraTokenClaims: (ctx, token) => token.extra || {},
  pkce: { required: () => true },
  // The account is the login typed in the development form; its ID token carries upn and name.
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id, upn: id, name: id }) }),
  claims: { openid: ['sub', 'upn'], profile: ['name'] },
  conformIdTokenClaims: false,
});
// Plain HTTP on loopback in tests.
provider.proxy = true;

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname === '/test/token') {
    try {
      const client = await provider.Client.find('opencm-tests');
      const sub = url.searchParams.get('sub');
      const groups = (url.searchParams.get('groups') || '').split(',').filter(Boolean);
      const token = new provider.ClientCredentials({ client, scope: 'openid' });
      token.resourceServer = new provider.ResourceServer(url.searchParams.get('aud') || RESOURCE, {
        audience: url.searchParams.get('aud') || RESOURCE,
        accessTokenFormat: 'jwt',
        accessTokenTTL: Number(url.searchParams.get('ttl') || 600),
        jwt: { sign: { alg: 'ES256' } },
      });
      // Further claims as a JSON object (`claims=`), as providers add them (oid, onprem_sid, name).
      const more = JSON.parse(url.searchParams.get('claims') || '{}');
      token.extra = { sub, upn: sub, groups, ...more };
      const value = await token.save();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(value);
    } catch (e) {
      res.writeHead(500);
      res.end(String((e && e.error_description) || '') + '\n' + String(e && e.stack || e));
    }
    return;
  }
  provider.callback()(req, res);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
