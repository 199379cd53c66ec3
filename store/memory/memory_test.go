package memory_test

import (
	"testing"

	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/memory"
	"github.com/authz-dev/authz/store/storetest"
)

func TestMemoryStoreConforms(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return memory.New() })
}
