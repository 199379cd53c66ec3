package credential_test

import (
	"testing"

	"github.com/authz-dev/authz/credential"
)

func BenchmarkSecretCheck(b *testing.B) {
	s := credential.NewSecret()
	b.ReportAllocs()
	for b.Loop() {
		if !credential.SecretMatches(s.Digest, s.Value) {
			b.Fatal("no match")
		}
	}
}
