// Command protogen compiles the module's .proto files and runs the pinned
// protoc-gen-go and protoc-gen-go-grpc plugins over them, without a system
// protoc: the parser is github.com/bufbuild/protocompile and the plugins are
// the `tool` dependencies pinned in go.mod (run with `go tool`).
//
// Regenerate every generated file in the module with:
//
//	go run ./internal/protogen
//
// The test in this package fails when a committed generated file is stale.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/pluginpb"
)

// Plugins are the generators run over each directory of .proto files, in
// order. Each is invoked as `go tool NAME`.
var plugins = []string{"protoc-gen-go", "protoc-gen-go-grpc"}

// FindProtos lists the .proto files under root (slash-separated, relative to
// root), skipping hidden directories, testdata and node_modules.
func FindProtos(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".proto") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// Generate compiles protos (paths relative to root) and returns the generated
// files keyed by their slash-separated path relative to root.
func Generate(ctx context.Context, root string, protos []string) (map[string][]byte, error) {
	comp := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{root}}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	files, err := comp.Compile(ctx, protos...)
	if err != nil {
		return nil, fmt.Errorf("protogen: compiling: %w", err)
	}
	byDir := map[string][]linker.File{}
	for _, f := range files {
		dir := filepath.Dir(f.Path())
		byDir[dir] = append(byDir[dir], f)
	}
	dirs := make([]string, 0, len(byDir))
	for d := range byDir {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	out := map[string][]byte{}
	for _, d := range dirs {
		req := request(byDir[d])
		for _, plugin := range plugins {
			resp, err := runPlugin(ctx, root, plugin, req)
			if err != nil {
				return nil, err
			}
			for _, f := range resp.GetFile() {
				out[f.GetName()] = []byte(f.GetContent())
			}
		}
	}
	return out, nil
}

// request builds a CodeGeneratorRequest for files, listing every dependency
// before its dependents as protoc does.
func request(files []linker.File) *pluginpb.CodeGeneratorRequest {
	req := &pluginpb.CodeGeneratorRequest{Parameter: proto.String("paths=source_relative")}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imps := fd.Imports()
		for i := 0; i < imps.Len(); i++ {
			add(imps.Get(i).FileDescriptor)
		}
		req.ProtoFile = append(req.ProtoFile, protodesc.ToFileDescriptorProto(fd))
	}
	for _, f := range files {
		add(f)
		req.FileToGenerate = append(req.FileToGenerate, f.Path())
	}
	return req
}

func runPlugin(ctx context.Context, root, plugin string, req *pluginpb.CodeGeneratorRequest) (*pluginpb.CodeGeneratorResponse, error) {
	in, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "go", "tool", plugin)
	cmd.Dir = root
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("protogen: go tool %s: %w: %s", plugin, err, stderr.String())
	}
	resp := &pluginpb.CodeGeneratorResponse{}
	if err := proto.Unmarshal(stdout.Bytes(), resp); err != nil {
		return nil, fmt.Errorf("protogen: %s response: %w", plugin, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("protogen: %s: %s", plugin, resp.GetError())
	}
	return resp, nil
}

// ModuleRoot walks up from dir to the directory holding go.mod.
func ModuleRoot(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("protogen: no go.mod above %s", dir)
		}
		dir = parent
	}
}

func main() {
	check := flag.Bool("check", false, "report stale generated files instead of writing them")
	flag.Parse()
	if err := run(context.Background(), *check); err != nil {
		fmt.Fprintln(os.Stderr, "protogen: error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, check bool) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := ModuleRoot(wd)
	if err != nil {
		return err
	}
	protos, err := FindProtos(root)
	if err != nil {
		return err
	}
	gen, err := Generate(ctx, root, protos)
	if err != nil {
		return err
	}
	stale := Stale(root, gen)
	if check {
		if len(stale) > 0 {
			return fmt.Errorf("stale generated files: %s (run: go run ./internal/protogen)", strings.Join(stale, ", "))
		}
		return nil
	}
	for _, name := range stale {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.WriteFile(p, gen[name], 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", name)
	}
	return nil
}

// Stale lists the generated files whose content on disk differs from gen.
func Stale(root string, gen map[string][]byte) []string {
	var stale []string
	for name, want := range gen {
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, want) {
			stale = append(stale, name)
		}
	}
	sort.Strings(stale)
	return stale
}
