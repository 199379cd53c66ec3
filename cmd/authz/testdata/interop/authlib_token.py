"""Gets a client-credentials token with python3-authlib, as its
documentation shows, and prints the token response as JSON.

    authlib_token.py METHOD TOKEN_URL CLIENT_ID CREDENTIAL_FILE

METHOD is client_secret_basic, client_secret_post or private_key_jwt; the
file holds the client secret or the PEM private key.
"""
import json
import sys

from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT

method, token_url, client_id, credential_file = sys.argv[1:5]
with open(credential_file) as f:
    credential = f.read()

session = OAuth2Session(client_id, credential, token_endpoint_auth_method=method, scope="read")
if method == "private_key_jwt":
    session.register_client_auth_method(PrivateKeyJWT(token_url))
token = session.fetch_token(token_url, grant_type="client_credentials")
print(json.dumps(token))
