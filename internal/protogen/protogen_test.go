package main

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGeneratedCodeIsFresh fails when a committed .pb.go file no longer
// matches what the pinned generators make from its .proto file.
func TestGeneratedCodeIsFresh(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	root, err := ModuleRoot(wd)
	require.NoError(t, err)
	protos, err := FindProtos(root)
	require.NoError(t, err)
	if len(protos) == 0 {
		t.Fatal("no .proto files found in the module")
	}
	gen, err := Generate(context.Background(), root, protos)
	require.NoError(t, err)
	require.NotEmpty(t, gen)
	require.Empty(t, Stale(root, gen), "generated code is stale: run go run ./internal/protogen")
}
