package api

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// newClientID makes an unguessable client id: 80 random bits in lowercase
// base32, safe in URLs, headers and Basic credentials.
func newClientID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "c-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}
