package render

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nothingnesses/agent-images/record"
)

// Output is one step output of a GitHub Actions step.
type Output struct{ Name, Value string }

// ReleaseOutputs are the step outputs of a release the Action exposes:
// digests, each released agent's index as JSON ({"pi":"sha256:..."}), for
// later steps that pin images by digest, and release-json, the absolute
// path of release.json when it was written.
func ReleaseOutputs(agents []*record.Agent, releaseJSON string) ([]Output, error) {
	digests := map[string]string{}
	for _, a := range Released(agents) {
		digests[a.Agent] = a.Index.String()
	}
	outs := []Output{{"digests", JSON(digests)}}
	if releaseJSON != "" {
		abs, err := filepath.Abs(releaseJSON)
		if err != nil {
			return nil, err
		}
		outs = append(outs, Output{"release-json", abs})
	}
	return outs, nil
}

// JSON is v as compact JSON, the form fromJSON reads back from an output.
func JSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps and slices of strings reach here
	}
	return string(b)
}

// WriteOutputs appends outputs to the step's $GITHUB_OUTPUT, in the
// delimited form so a value may hold newlines. Outside Actions ($GITHUB_OUTPUT
// unset) it writes name=value lines to elsewhere instead, when that is not
// nil.
func WriteOutputs(elsewhere io.Writer, outs ...Output) error {
	path := os.Getenv("GITHUB_OUTPUT")
	for _, o := range outs {
		if path == "" {
			if elsewhere != nil {
				fmt.Fprintf(elsewhere, "%s=%s\n", o.Name, o.Value)
			}
			continue
		}
		var r [8]byte
		if _, err := rand.Read(r[:]); err != nil {
			return err
		}
		delim := "ghadelim_" + hex.EncodeToString(r[:])
		if err := appendFile(path, fmt.Sprintf("%s<<%s\n%s\n%s\n", o.Name, delim, o.Value, delim)); err != nil {
			return fmt.Errorf("writing step output %s: %w", o.Name, err)
		}
	}
	return nil
}

// WriteStepSummary appends Markdown to the step's $GITHUB_STEP_SUMMARY;
// outside Actions it writes it to elsewhere instead, when that is not nil.
func WriteStepSummary(elsewhere io.Writer, markdown string) error {
	path := os.Getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		if elsewhere != nil {
			_, err := io.WriteString(elsewhere, markdown)
			return err
		}
		return nil
	}
	if err := appendFile(path, markdown); err != nil {
		return fmt.Errorf("writing the step summary: %w", err)
	}
	return nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
