package flake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
)

// errNotPackable says that an image's conf.json asks for something the
// packer does not reproduce (a base image, a creation time of "now"): the
// image is then built by Nix as before.
var errNotPackable = errors.New("not packable from its conf.json")

// imageConf is the conf.json of nixpkgs' streamLayeredImage: everything
// its stream script makes the image from.
type imageConf struct {
	Architecture       string          `json:"architecture"`
	Config             json.RawMessage `json:"config"`
	Created            string          `json:"created"`
	Mtime              string          `json:"mtime"`
	UID                json.RawMessage `json:"uid"`
	GID                json.RawMessage `json:"gid"`
	Uname              string          `json:"uname"`
	Gname              string          `json:"gname"`
	StoreDir           string          `json:"store_dir"`
	FromImage          *string         `json:"from_image"`
	StoreLayers        [][]string      `json:"store_layers"`
	CustomisationLayer string          `json:"customisation_layer"`
}

// readConf reads conf.json and checks that the packer can make the image
// the stream script would: errNotPackable otherwise.
func readConf(path string) (*imageConf, owner, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, owner{}, err
	}
	var c imageConf
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, owner{}, fmt.Errorf("decoding %s: %w", path, err)
	}
	own := owner{Uname: c.Uname, Gname: c.Gname}
	uid, uidErr := jsonInt(c.UID)
	gid, gidErr := jsonInt(c.GID)
	mtime, mtimeErr := isoTime(c.Mtime)
	_, createdErr := isoTime(c.Created)
	switch {
	case c.FromImage != nil:
		return nil, own, fmt.Errorf("%w: from_image is set", errNotPackable)
	case errors.Join(uidErr, gidErr, mtimeErr, createdErr) != nil:
		return nil, own, fmt.Errorf("%w: %w", errNotPackable, errors.Join(uidErr, gidErr, mtimeErr, createdErr))
	case c.CustomisationLayer == "" || c.StoreDir == "" || len(c.Config) == 0:
		return nil, own, fmt.Errorf("%w: customisation_layer, store_dir or config missing", errNotPackable)
	}
	for _, layer := range c.StoreLayers {
		for _, p := range layer {
			if !strings.HasPrefix(p, c.StoreDir+"/") || strings.ContainsAny(p, `'\`) {
				return nil, own, fmt.Errorf("%w: store path %q", errNotPackable, p)
			}
		}
	}
	own.UID, own.GID, own.Mtime = uid, gid, mtime.Unix()
	return &c, own, nil
}

// jsonInt reads a number that jq may have written as a string ("0").
func jsonInt(raw json.RawMessage) (int, error) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	return strconv.Atoi(s)
}

// isoForm is the ISO 8601 form whose Python isoformat() the packer knows:
// seconds, and an offset or Z.
var isoForm = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$`)

func isoTime(s string) (time.Time, error) {
	if !isoForm.MatchString(s) {
		return time.Time{}, fmt.Errorf("time %q is not of the form 1970-01-01T00:00:01Z", s)
	}
	return time.Parse(time.RFC3339, s)
}

// pythonISO is datetime.fromisoformat(s).isoformat() for an isoForm s.
func pythonISO(s string) string {
	for _, utc := range []string{"Z", "-00:00"} {
		if t, ok := strings.CutSuffix(s, utc); ok {
			return t + "+00:00"
		}
	}
	return s
}

// packImage makes the image the stream script would make of conf: each
// store layer from the cache (packed from the store the first time), the
// customisation layer Nix wrote, and the config as Python's json.dumps
// writes it.
func (b *Builder) packImage(ctx context.Context, conf *imageConf, own owner) (v1.Image, error) {
	layers := make([]*cachedLayer, len(conf.StoreLayers)+1)
	comments := make([]string, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	for i, paths := range conf.StoreLayers {
		comments[i] = pythonList(paths)
		g.Go(func() error {
			l, err := b.cache.storeLayer(gctx, paths, own)
			layers[i] = l
			return err
		})
	}
	custom := conf.CustomisationLayer
	comments[len(layers)-1] = pythonList([]string{custom})
	g.Go(func() error {
		sum, err := os.ReadFile(filepath.Join(custom, "checksum"))
		if err != nil {
			return err
		}
		diffID, err := v1.NewHash("sha256:" + strings.TrimSpace(string(sum)))
		if err != nil {
			return fmt.Errorf("customisation layer %s: %w", custom, err)
		}
		layers[len(layers)-1], err = b.cache.knownLayer(gctx, diffID, func() (io.ReadCloser, error) {
			return os.Open(filepath.Join(custom, "layer.tar"))
		})
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	config, err := pythonConfig(conf, layers, comments)
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(layers))
	for i, l := range layers {
		out[i] = l
	}
	return newOCIImage(config, out, b.cache.compression.mediaType())
}

// pythonList is Python's repr of a list of store paths, which readConf
// checked need no escaping.
func pythonList(paths []string) string {
	return "['" + strings.Join(paths, "', '") + "']"
}

// pythonConfig is the image config as the stream script writes it:
// json.dumps(indent=4) of a dict in its order, with the conf's config as
// conf.json has it.
func pythonConfig(conf *imageConf, layers []*cachedLayer, comments []string) ([]byte, error) {
	type history struct {
		Created string `json:"created"`
		Comment string `json:"comment"`
	}
	type rootfs struct {
		DiffIDs []string `json:"diff_ids"`
		Type    string   `json:"type"`
	}
	image := struct {
		Created      string          `json:"created"`
		Architecture string          `json:"architecture"`
		OS           string          `json:"os"`
		Config       json.RawMessage `json:"config"`
		RootFS       rootfs          `json:"rootfs"`
		History      []history       `json:"history"`
	}{Created: pythonISO(conf.Created), Architecture: conf.Architecture, OS: "linux", Config: conf.Config, RootFS: rootfs{Type: "layers"}}
	for i, l := range layers {
		image.RootFS.DiffIDs = append(image.RootFS.DiffIDs, l.entry.DiffID.String())
		image.History = append(image.History, history{image.Created, "store paths: " + comments[i]})
	}
	compact, err := json.Marshal(image)
	if err != nil {
		return nil, err
	}
	return pythonJSON(compact)
}

// pythonJSON is JSON as Python's json.dumps(json.loads(it), indent=4)
// writes it: json.Indent keeps the order and lays it out the same way,
// then every string is written again with Python's escapes (ASCII only).
// Python prints a float its own way; only integers are certain, so any
// other number is errNotPackable.
func pythonJSON(compact []byte) ([]byte, error) {
	var indented, b bytes.Buffer
	if err := json.Indent(&indented, compact, "", "    "); err != nil {
		return nil, err
	}
	text := indented.Bytes()
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '"':
			end := i + 1
			for ; text[end] != '"'; end++ {
				if text[end] == '\\' {
					end++
				}
			}
			var s string
			if err := json.Unmarshal(text[i:end+1], &s); err != nil {
				return nil, err
			}
			writePythonString(&b, s)
			i = end
		case c == '.' || c == 'E' || c == 'e' && text[i-1] >= '0' && text[i-1] <= '9':
			start, end := i, i
			for start > 0 && strings.IndexByte("0123456789-", text[start-1]) >= 0 {
				start--
			}
			for end < len(text) && strings.IndexByte("0123456789.eE+-", text[end]) >= 0 {
				end++
			}
			return nil, fmt.Errorf("%w: the number %s in the config", errNotPackable, text[start:end])
		default:
			b.WriteByte(c)
		}
	}
	return b.Bytes(), nil
}

// pythonEscapes are the escapes json.dumps writes by name.
var pythonEscapes = map[rune]string{'"': `\"`, '\\': `\\`, '\n': `\n`, '\r': `\r`, '\t': `\t`, '\b': `\b`, '\f': `\f`}

func writePythonString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch e, ok := pythonEscapes[r]; {
		case ok:
			b.WriteString(e)
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(b, `\u%04x`, r)
		}
	}
	b.WriteByte('"')
}
