package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/store/memory"
)

// TestAuditedHandlersReachTheConnection: a realm import, an audited write,
// extends its read and write deadlines through http.ResponseController;
// the audit's recorder must let it reach the connection, or a large
// import is cut at the listener's few seconds.
func TestAuditedHandlersReachTheConnection(t *testing.T) {
	s := api.New(memory.New(), nil, nil, nil)
	var readErr, writeErr error
	srv := httptest.NewServer(s.Audited("test.write", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rc := http.NewResponseController(w)
		readErr = rc.SetReadDeadline(time.Now().Add(time.Minute))
		writeErr = rc.SetWriteDeadline(time.Now().Add(time.Minute))
		w.WriteHeader(http.StatusNoContent)
	})))
	defer srv.Close()
	resp, err := http.Post(srv.URL+api.Prefix+"/x", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if readErr != nil || writeErr != nil {
		t.Errorf("deadlines through the audit: read %v, write %v", readErr, writeErr)
	}
}
