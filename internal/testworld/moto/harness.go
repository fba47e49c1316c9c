package moto

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// harnessFiles are the Python entry point (autoami_moto.py) that patches moto
// in-process and serves it, and its extension modules (autoami_*.py); they
// are written to a temporary directory for each Start.
//
//go:embed *.py
var harnessFiles embed.FS

// harnessEntry is the script Start runs; the others are imported by it.
const harnessEntry = "autoami_moto.py"

// controlPath is the harness's own HTTP endpoint on the moto port.
const controlPath = "/autoami-harness/"

func writeScript() (dir, path string, err error) {
	dir, err = os.MkdirTemp("", "autoami-moto-")
	if err != nil {
		return "", "", fmt.Errorf("temporary directory for the moto harness: %w", err)
	}
	entries, err := harnessFiles.ReadDir(".")
	if err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("list embedded moto harness: %w", err)
	}
	for _, e := range entries {
		data, err := harnessFiles.ReadFile(e.Name())
		if err != nil {
			os.RemoveAll(dir)
			return "", "", fmt.Errorf("read embedded %s: %w", e.Name(), err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			os.RemoveAll(dir)
			return "", "", fmt.Errorf("write moto harness %s: %w", e.Name(), err)
		}
	}
	return dir, filepath.Join(dir, harnessEntry), nil
}

// findPython picks the interpreter that has moto: Options.Python, else the
// one moto_server runs with (its #! line, else python3 beside it), else
// python3 on PATH; the first that imports moto.server wins.
func findPython(ctx context.Context, opts Options) (string, error) {
	var candidates []string
	if opts.Python != "" {
		candidates = []string{opts.Python}
	} else {
		server, err := lookBinary(opts.Binary)
		if err != nil {
			return "", err
		}
		if interp := shebang(server); interp != "" {
			candidates = append(candidates, interp)
		}
		candidates = append(candidates, filepath.Join(filepath.Dir(server), "python3"), "python3")
	}
	var tried []string
	for _, c := range candidates {
		path, err := exec.LookPath(c)
		if err != nil {
			tried = append(tried, c+": not found")
			continue
		}
		out, err := exec.CommandContext(ctx, path, "-c", "import moto, moto.server; print(moto.__version__)").CombinedOutput()
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: cannot import moto.server (%s)", path, firstLine(out)))
			continue
		}
		return path, nil
	}
	return "", fmt.Errorf("no python with moto for the test harness (%s); %s", strings.Join(tried, "; "), InstallHint)
}

// shebang returns the interpreter of a "#!/path/python" script, or "" when
// the file is not a Python script (pyenv shims are bash scripts).
func shebang(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	if !strings.HasPrefix(line, "#!") {
		return ""
	}
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if len(fields) == 0 || !strings.Contains(filepath.Base(fields[0]), "python") {
		return ""
	}
	return fields[0]
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:] // Python puts the exception on the last line
	}
	return s
}

func pendingJSON(p Pending) (string, error) {
	for name, d := range map[string]time.Duration{"Image": p.Image, "ImageCopy": p.ImageCopy, "Snapshot": p.Snapshot, "SnapshotCopy": p.SnapshotCopy} {
		if d < 0 {
			return "", fmt.Errorf("moto options: Pending.%s is negative (%s)", name, d)
		}
	}
	b, err := json.Marshal(map[string]float64{
		"image":        p.Image.Seconds(),
		"imageCopy":    p.ImageCopy.Seconds(),
		"snapshot":     p.Snapshot.Seconds(),
		"snapshotCopy": p.SnapshotCopy.Seconds(),
	})
	return string(b), err
}

func (s *Server) setPending(ctx context.Context, p Pending) error {
	body, err := pendingJSON(p)
	if err != nil {
		return err
	}
	return s.control(ctx, "pending", json.RawMessage(body), nil)
}

func (s *Server) setImage(ctx context.Context, body map[string]any) error {
	if body["region"] == "" || body["imageId"] == "" {
		return fmt.Errorf("set image override: region and image ID are required")
	}
	return s.control(ctx, "image", body, nil)
}

func (s *Server) additions(ctx context.Context) ([]string, error) {
	var out struct {
		Additions []string `json:"additions"`
	}
	if err := s.control(ctx, "", nil, &out); err != nil {
		return nil, err
	}
	return out.Additions, nil
}

// control calls the harness endpoint: GET when body is nil, POST otherwise.
func (s *Server) control(ctx context.Context, name string, body, out any) error {
	return control(ctx, s.URL, name, body, out)
}

// control calls the harness endpoint of the local AWS at url (moto's own
// address or the fault proxy's, which passes it through).
func control(ctx context.Context, url, name string, body, out any) error {
	method, reader := http.MethodGet, io.Reader(nil)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("harness %s: %w", name, err)
		}
		method, reader = http.MethodPost, bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url+controlPath+name, reader)
	if err != nil {
		return fmt.Errorf("harness %s: %w", name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("harness %s at %s: %w", name, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("harness %s: read answer: %w", name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("harness %s: HTTP %d: %s", name, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("harness %s: decode answer: %w", name, err)
		}
	}
	return nil
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
}
