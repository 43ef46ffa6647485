package upload

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ManifestName is the name of the manifest stored with every recording.
const ManifestName = "manifest.json"

// Manifest describes a stored recording. It holds no secret.
type Manifest struct {
	Record     string         `json:"record"`
	ClientID   string         `json:"client_id"`
	JobID      string         `json:"job_id"`
	Mode       string         `json:"mode"`
	Suite      string         `json:"suite"`
	Urgency    int            `json:"urgency"`
	Size       uint64         `json:"size"`
	SHA256     string         `json:"sha256"`
	Files      []ManifestFile `json:"files"`
	ReceivedAt time.Time      `json:"received_at"`
}

// ManifestFile is one file entry of a Manifest.
type ManifestFile struct {
	Name   string `json:"name"`
	Size   uint64 `json:"size"`
	SHA256 string `json:"sha256"`
}

// storeRecording writes the files of payload and the manifest into a new
// directory under dir, atomically: everything goes to a hidden temporary
// directory first, every file and the directory are fsynced, and then the
// directory is renamed into place and dir is fsynced. Readers that skip
// hidden entries never see a partial recording. It returns the name of the
// new directory.
func storeRecording(dir string, req *Request, suite Suite, payload []byte, now time.Time) (string, error) {
	name := storedName(req)
	final := filepath.Join(dir, name)
	if _, err := os.Lstat(final); err == nil {
		return "", fmt.Errorf("%w: %s", ErrExists, name)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("upload: store: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".incoming-")
	if err != nil {
		return "", fmt.Errorf("upload: store: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	m := Manifest{
		Record: req.Record, ClientID: req.ClientID, JobID: hex.EncodeToString(req.JobID[:]),
		Mode: req.Mode.String(), Suite: suite.String(), Urgency: int(req.Urgency),
		Size: req.TotalSize(), SHA256: hex.EncodeToString(req.Digest[:]), ReceivedAt: now.UTC(),
	}
	off := uint64(0)
	for _, f := range req.Files {
		if err := writeSync(filepath.Join(tmp, f.Name), payload[off:off+f.Size]); err != nil {
			return "", err
		}
		off += f.Size
		m.Files = append(m.Files, ManifestFile{Name: f.Name, Size: f.Size, SHA256: hex.EncodeToString(f.SHA256[:])})
	}
	js, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return "", err
	}
	if err := writeSync(filepath.Join(tmp, ManifestName), append(js, '\n')); err != nil {
		return "", err
	}
	if err := syncDir(tmp); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("upload: store: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("upload: store: %w", err)
	}
	ok = true
	if err := syncDir(dir); err != nil {
		return "", err
	}
	return name, nil
}

// storedName is the directory a request's recording is stored under.
func storedName(req *Request) string {
	return fmt.Sprintf("%s-%s", req.Record, hex.EncodeToString(req.JobID[:4]))
}

func writeSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("upload: store: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("upload: store: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("upload: store: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("upload: store: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("upload: store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("upload: store: syncing %s: %w", dir, err)
	}
	return nil
}

// ReadStored reads the recording stored under dir/name: its manifest and its
// files.
func ReadStored(dir, name string) (*Manifest, *Recording, error) {
	if name == "" || name[0] == '.' || filepath.Base(name) != name {
		return nil, nil, fmt.Errorf("%w: stored name %q", ErrMalformed, name)
	}
	js, err := os.ReadFile(filepath.Join(dir, name, ManifestName))
	if err != nil {
		return nil, nil, fmt.Errorf("upload: reading manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, nil, fmt.Errorf("upload: manifest of %s: %w", name, err)
	}
	rec := &Recording{Name: m.Record}
	for _, f := range m.Files {
		if !validName(f.Name) || f.Name == ManifestName {
			return nil, nil, fmt.Errorf("%w: manifest file name %q", ErrMalformed, f.Name)
		}
		data, err := os.ReadFile(filepath.Join(dir, name, f.Name))
		if err != nil {
			return nil, nil, fmt.Errorf("upload: reading stored file: %w", err)
		}
		rec.Files = append(rec.Files, File{Name: f.Name, Data: data})
	}
	return &m, rec, nil
}
