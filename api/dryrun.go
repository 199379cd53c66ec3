package api

import (
	"net/http"
)

// Results of a write, as a dry run reports them.
const (
	ResultCreated   = "created"
	ResultUpdated   = "updated"
	ResultUnchanged = "unchanged"
)

// DryRunResponse says what a write would do, had dryRun=true not been
// given: whether it would create, update or leave the resource unchanged,
// and which fields it would change. The request is validated as for real.
type DryRunResponse struct {
	Result  string   `json:"result"`
	Changes []string `json:"changes,omitempty"`
}

// dryRun reports whether the caller asked only what a write would do.
func dryRun(r *http.Request) bool { return r.URL.Query().Get("dryRun") == "true" }

// dryRunResult describes changed settings, named by field, in the API's
// spelling.
func dryRunResult(names map[string]string, changed []string) DryRunResponse {
	if len(changed) == 0 {
		return DryRunResponse{Result: ResultUnchanged}
	}
	out := DryRunResponse{Result: ResultUpdated}
	for _, c := range changed {
		out.Changes = append(out.Changes, names[c])
	}
	return out
}
